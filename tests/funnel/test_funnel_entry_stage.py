"""Visitors no rule has staged yet are counted in the entry stage, computed, never stored.

Regression for issue 12 part 10: 1,200 of 1,204 visitors were counted nowhere ("New visitor" 0,
"Intends to buy again" 100%) although the default funnel's ``new_visitor`` rule always holds.
"""

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select, update

from tests.funnel.helpers import (
    answer_survey,
    figures,
    identify,
    loyalty_campaign,
    place_order,
    put_stages,
)
from tests.helpers import decide
from widget_server.extensions import db
from widget_server.models import StageChange, Visitor
from widget_server.services.funnel.figures import shares_pct

LOYAL = {"emotional": 5, "intentional": 5}  # scale answers: emotional and intentional 5


def visitors_by_stage(body) -> dict:
    return {s["key"]: s["visitors"] for s in body["stages"]}


def test_visitors_who_never_answered_are_counted_in_the_new_visitor_stage(
    admin, client, site, make_campaign
):
    survey = loyalty_campaign(make_campaign, site)
    for index in range(5):
        decide(client, site, f"visitor-anon{index:04d}")
    answer_survey(client, site, survey, "visitor-loyal001", LOYAL)

    body = figures(admin, site)

    assert visitors_by_stage(body)["new_visitor"] == 5
    assert visitors_by_stage(body)["intentional"] == 1
    assert body["entry_stage"] == "new_visitor"
    assert (body["not_yet_staged_visitors"], body["unstaged_visitors"]) == (5, 0)
    assert body["totals"]["visitors"] == 6
    shares = {s["key"]: s["share_of_visitors"] for s in body["stages"]}
    assert (shares["new_visitor"], shares["intentional"]) == (83.33, 16.67)  # 5/6 and 1/6


def test_counting_them_writes_no_stage_and_no_history(admin, client, site):
    for index in range(3):
        decide(client, site, f"visitor-anon{index:04d}")

    assert visitors_by_stage(figures(admin, site))["new_visitor"] == 3

    assert db.session.scalar(select(func.count()).where(Visitor.stage.is_not(None))) == 0
    assert db.session.scalar(select(func.count()).select_from(StageChange)) == 0


def test_a_first_order_moves_a_visitor_out_of_the_entry_stage(admin, app, client, site):
    app.config["FUNNEL_FIGURES_TTL_S"] = 0
    decide(client, site, "visitor-buyer001")
    decide(client, site, "visitor-anon0001")
    assert visitors_by_stage(figures(admin, site))["new_visitor"] == 2

    place_order(site, "visitor-buyer001", "25.00")

    body = figures(admin, site)
    assert visitors_by_stage(body)["new_visitor"] == 1
    assert visitors_by_stage(body)["customer"] == 1
    entry = body["stages"][0]
    assert (entry["customers"], entry["orders"], entry["revenue"]) == (0, 0, "0.00")


def test_identified_and_anonymous_visitors_add_up_in_the_entry_stage(admin, client, site):
    identify(client, site, {"visitor_id": "visitor-known001"})  # staged: new_visitor stored
    decide(client, site, "visitor-anon0001")

    body = figures(admin, site)

    assert visitors_by_stage(body)["new_visitor"] == 2
    assert body["not_yet_staged_visitors"] == 1


def test_visitor_whose_facts_meet_no_rule_stays_unstaged(admin, client, site):
    """A funnel with a gap: the entry stage holds without orders, the next from 5 orders on."""
    put_stages(
        admin,
        site,
        [
            {"key": "browsing", "name": "Browsing", "rule": {"orders": {"lt": 1}}},
            {"key": "loyal", "name": "Loyal", "rule": {"orders": {"gte": 5}}},
        ],
    )
    decide(client, site, "visitor-anon0001")
    decide(client, site, "visitor-twice001")
    place_order(site, "visitor-twice001", "10.00")
    place_order(site, "visitor-twice001", "10.00")

    body = figures(admin, site)

    assert body["entry_stage"] == "browsing"
    assert visitors_by_stage(body) == {"browsing": 1, "loyal": 0}
    assert (body["unstaged_visitors"], body["unstaged_share_of_visitors"]) == (1, 50.0)


def test_funnel_without_an_entry_stage_leaves_anonymous_visitors_unstaged(admin, client, site):
    put_stages(admin, site, [{"key": "buyer", "name": "Buyer", "rule": {"orders": {"gte": 1}}}])
    decide(client, site, "visitor-anon0001")
    decide(client, site, "visitor-anon0002")

    body = figures(admin, site)

    assert body["entry_stage"] is None
    assert visitors_by_stage(body) == {"buyer": 0}
    assert (body["not_yet_staged_visitors"], body["unstaged_visitors"]) == (0, 2)
    assert body["unstaged_share_of_visitors"] == 100.0


def test_shares_of_stages_retired_stages_and_no_stage_add_up_to_100(admin, client, site):
    for index in range(2):
        decide(client, site, f"visitor-anon{index:04d}")
    identify(client, site, {"visitor_id": "visitor-known001"})
    place_order(site, "visitor-known001", "10.00")
    # A stage key the funnel no longer defines, as a visitor staged under an older funnel keeps.
    db.session.execute(update(Visitor).where(Visitor.stage == "customer").values(stage="old_vip"))
    db.session.commit()

    body = figures(admin, site)

    shares = [s["share_of_visitors"] for s in body["stages"] + body["retired_stages"]]
    assert body["retired_stages"][0]["key"] == "old_vip"
    assert round(sum(shares) + body["unstaged_share_of_visitors"], 2) == 100.0
    assert body["retired_stages"][0]["share_of_visitors"] == 33.33
    assert body["stages"][0]["share_of_visitors"] == 66.67


@given(st.lists(st.integers(min_value=0, max_value=10**6), min_size=1, max_size=12))
def test_rounded_shares_always_add_up_to_exactly_100(counts):
    shares = shares_pct(counts, decimals=1)
    if sum(counts) == 0:
        assert shares == [None] * len(counts)
        return
    assert round(sum(shares) * 10) == 1000
    for count, share in zip(counts, shares, strict=True):
        assert abs(share - 100 * count / sum(counts)) < 0.1 + 1e-9  # off by under one unit


def test_rounded_shares_give_the_leftover_unit_to_the_largest_remainder():
    assert shares_pct([1, 1, 1], decimals=0) == [34.0, 33.0, 33.0]  # ties: the first one
    assert shares_pct([1200, 4], decimals=0) == [100.0, 0.0]
    assert shares_pct([2, 1], decimals=2) == [66.67, 33.33]
