"""The funnel figures' snapshot by its age: answered as is within the TTL, recomputed past it.

The clock the snapshots read (``figures.utcnow``) is frozen and moved by hand, so the snapshot
ages without the test sleeping; ``computed_at`` shows which computation answered.
"""

import pytest

from tests.funnel.helpers import figures, identify, place_order
from widget_server.services.funnel import figures as figures_module
from widget_server.services.funnel.figures import snapshots

TTL_S = 30.0


@pytest.fixture
def site(make_site, app):
    app.config["FUNNEL_FIGURES_TTL_S"] = TTL_S
    return make_site()


@pytest.fixture
def snapshot_then_order(admin, client, site, clock):
    """A snapshot taken before the visitor's first order (0 orders), then that order."""
    identify(client, site, {"visitor_id": "visitor-aging001"})
    first = figures(admin, site)
    assert first["totals"]["orders"] == 0
    assert first["computed_at"] == clock.now.isoformat()
    place_order(site, "visitor-aging001", "12.00")
    return first


def test_snapshot_younger_than_the_ttl_is_answered_as_is(admin, site, clock, snapshot_then_order):
    clock.advance(seconds=TTL_S - 1)

    answered = figures(admin, site)
    snapshots().wait()
    again = figures(admin, site)

    assert answered == snapshot_then_order
    assert again == snapshot_then_order  # no background recomputation was started


def test_snapshot_older_than_the_ttl_is_recomputed(admin, site, clock, snapshot_then_order):
    clock.advance(seconds=TTL_S + 1)

    stale = figures(admin, site)  # answers at once, recomputes in the background
    snapshots().wait()
    fresh = figures(admin, site)

    assert stale == snapshot_then_order
    assert fresh["totals"]["orders"] == 1
    assert fresh["computed_at"] == clock.now.isoformat()


def test_recomputed_snapshot_is_young_again(admin, site, clock, snapshot_then_order):
    clock.advance(minutes=5)
    figures(admin, site)
    snapshots().wait()
    recomputed = figures(admin, site)
    place_order(site, "visitor-aging001", "3.00")

    clock.advance(seconds=TTL_S - 1)
    figures(admin, site)
    snapshots().wait()

    assert figures(admin, site) == recomputed
    assert recomputed["totals"]["orders"] == 1


def test_snapshot_from_a_clock_set_back_is_recomputed(admin, site, clock, snapshot_then_order):
    """A snapshot "from the future" (the clock was set back) has no trustworthy age."""
    clock.advance(minutes=-10)

    figures(admin, site)
    snapshots().wait()

    assert figures(admin, site)["totals"]["orders"] == 1


def test_figures_age_is_read_from_computed_at(admin, site, clock, snapshot_then_order):
    clock.advance(seconds=185)
    assert figures_module.figures_age_s(snapshot_then_order) == 185.0
