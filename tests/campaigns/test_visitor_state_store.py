"""The visitor-state store: a returning visitor costs decide no statement, and every change that
decide must see (events, identify, orders, other workers') still reaches it.

Two apps on one database stand for two workers (or hosts), each with its own memory store; with
Redis they share one.
"""

import time
from datetime import UTC, datetime, timedelta

import pytest

from tests.helpers import (
    TEST_REDIS_URL,
    decide,
    event,
    post_public,
    redis_or_skip,
    send_events,
    statements_sent,
    survey_variants,
    time_passes,
)
from tests.rewards.helpers import post_order
from widget_server.services.visitors import state_store
from widget_server.services.visitors.state import AssignmentState, VisitorState
from widget_server.services.visitors.state_store import (
    ChangedVisitorsFeed,
    MemoryStateStore,
    RedisStateStore,
    decode_state,
    encode_state,
)

CHECK_S = 0.2


def _offered(client, site, visitor="visitor-0001") -> list[int]:
    answer = decide(client, site, visitor)
    assert answer.status_code == 200, answer.json
    return [offer["campaign_id"] for offer in answer.json["campaigns"]]


def _worker(make_app, **settings):
    chosen = {
        "CONFIG_CACHE_TTL_S": 60.0,
        "CONFIG_CHECK_S": CHECK_S,
        "EVENTS_APPLY_INLINE": False,
        **settings,
    }
    return make_app(**chosen).test_client()


def _impressions(client, site, campaign, count, visitor="visitor-0001"):
    variant_id = campaign["variants"][0]["id"]
    shown = [event("impression", visitor, campaign["id"], variant_id) for _ in range(count)]
    answer = send_events(client, site, shown)
    assert answer.status_code == 202, answer.json


@pytest.fixture
def redis_url():
    redis_or_skip().close()
    return TEST_REDIS_URL


@pytest.mark.parametrize("store", ["memory", "redis"])
def test_a_returning_visitor_whose_state_is_kept_costs_no_statement(
    make_app, make_site, make_campaign, store, request
):
    settings = {"REDIS_URL": request.getfixturevalue("redis_url")} if store == "redis" else {}
    client = make_app(CONFIG_CACHE_TTL_S=60.0, CONFIG_CHECK_S=3600.0, **settings).test_client()
    site = make_site()
    campaign = make_campaign(site)
    visitor = f"returning-{store}-{time.monotonic_ns()}"
    assert _offered(client, site, visitor) == [campaign["id"]]  # first sight: loaded, assigned
    with statements_sent() as sent:
        assert _offered(client, site, visitor) == [campaign["id"]]
        assert _offered(client, site, visitor) == [campaign["id"]]
    assert sent == []


def test_the_variant_stays_the_stored_one_when_the_state_comes_from_the_store(
    make_app, make_site, make_campaign, admin
):
    client = make_app(CONFIG_CACHE_TTL_S=0.0).test_client()
    site = make_site()
    campaign = make_campaign(site, variants=survey_variants("AB", weights=[1, 1]))
    shown = {
        n: decide(client, site, f"visitor-{n:04d}").json["campaigns"][0]["variant_id"]
        for n in range(40)
    }
    first = campaign["variants"][0]
    patched = admin.patch(f"/api/v1/admin/variants/{first['id']}", json={"weight": 0})
    assert patched.status_code == 200, patched.json
    for n, variant_id in shown.items():
        assert decide(client, site, f"visitor-{n:04d}").json["campaigns"][0]["variant_id"] == (
            variant_id
        )


def test_a_cap_reached_through_this_worker_holds_at_once(make_app, make_site, make_campaign):
    client = _worker(make_app)
    site = make_site()
    campaign = make_campaign(site, frequency={"max_impressions": 2})
    assert _offered(client, site) == [campaign["id"]]  # state now kept
    _impressions(client, site, campaign, 2)  # stored, not applied (no applier runs)
    assert _offered(client, site) == []


def test_a_cap_reached_through_another_worker_holds_after_one_check(
    make_app, make_site, make_campaign
):
    here, there = _worker(make_app), _worker(make_app)
    site = make_site()
    campaign = make_campaign(site, frequency={"max_impressions": 2})
    assert _offered(here, site) == [campaign["id"]]
    assert _offered(here, site) == [campaign["id"]]  # kept: no statement would see a change
    _impressions(there, site, campaign, 2)
    time.sleep(CHECK_S * 1.05)
    assert _offered(here, site) == []


def test_with_redis_a_completion_through_another_worker_holds_at_once(
    make_app, make_site, make_campaign, redis_url
):
    here = _worker(make_app, REDIS_URL=redis_url, CONFIG_CHECK_S=3600.0)
    there = _worker(make_app, REDIS_URL=redis_url, CONFIG_CHECK_S=3600.0)
    site = make_site()
    campaign = make_campaign(site)
    visitor = f"redis-visitor-{time.monotonic_ns()}"
    assert _offered(here, site, visitor) == [campaign["id"]]
    assert _offered(there, site, visitor) == [campaign["id"]]
    variant_id = campaign["variants"][0]["id"]
    done = send_events(there, site, [event("complete", visitor, campaign["id"], variant_id)])
    assert done.status_code == 202, done.json
    assert _offered(here, site, visitor) == []


def test_an_order_counts_for_targeting_at_once(client, make_site, make_campaign):
    site = make_site()
    campaign = make_campaign(site, targeting={"orders_min": 1})
    assert _offered(client, site) == []  # the state is kept from here on
    order = {
        "order_id": "1001",
        "visitor_id": "visitor-0001",
        "total": 59.9,
        "currency": "EUR",
    }
    assert post_order(client, site, order).status_code == 201
    assert _offered(client, site) == [campaign["id"]]


def test_identify_merges_and_the_merged_browser_keeps_the_customers_assignment(
    client, make_site, make_campaign
):
    site = make_site()
    campaign = make_campaign(site, variants=survey_variants("AB", weights=[1, 1]))
    variants = {}
    for key in ("phone-browser", "laptop-browser"):
        variants[key] = decide(client, site, key).json["campaigns"][0]["variant_id"]
        linked = post_public(client, site, "identify", {"visitor_id": key, "customer_id": "c-1"})
        assert linked.status_code == 200, linked.json
    answers = {decide(client, site, key).json["campaigns"][0]["variant_id"] for key in variants}
    assert answers == {variants["phone-browser"]}, (campaign, variants)


def test_a_close_aged_past_days_after_close_offers_again(client, make_site, make_campaign):
    site = make_site()
    campaign = make_campaign(site, frequency={"days_after_close": 1})
    variant_id = campaign["variants"][0]["id"]
    assert _offered(client, site) == [campaign["id"]]
    send_events(client, site, [event("close", "visitor-0001", campaign["id"], variant_id)])
    assert _offered(client, site) == []
    time_passes(timedelta(days=2))  # rows and kept states alike
    assert _offered(client, site) == [campaign["id"]]


# --- the stores alone --------------------------------------------------------------------------


def _state(visitor_id=7, key="k") -> VisitorState:
    now = datetime.now(UTC)
    return VisitorState(visitor_id=visitor_id, visitor_key=key, first_seen_at=now, last_seen_at=now)


def _stores(redis_url=None):
    yield MemoryStateStore(capacity=10, ttl_s=60)
    if redis_url:
        import redis  # noqa: PLC0415

        yield RedisStateStore(redis.Redis.from_url(redis_url), ttl_s=60)


@pytest.mark.parametrize("kind", ["memory", "redis"])
def test_a_state_read_before_a_change_is_not_kept_after_it(kind, request):
    """A decide that read the database just before an event committed must not leave its copy
    in the store: forgotten between the get and the put, the put is ignored (or stale)."""
    redis_url = request.getfixturevalue("redis_url") if kind == "redis" else None
    store = list(_stores(redis_url))[-1]
    site_id = int(time.monotonic_ns() % 1_000_000_000)
    missing, token = store.get(site_id, "k")
    assert missing is None
    store.forget(site_id, visitor_keys=["k"])
    store.put(site_id, "k", _state(), token)
    assert store.get(site_id, "k")[0] is None
    # Read after the forget: kept.
    _, token = store.get(site_id, "k")
    store.put(site_id, "k", _state(), token)
    assert store.get(site_id, "k")[0].visitor_id == 7
    # Forgotten by the visitor's id (an identify, an order): gone under every key.
    store.forget(visitor_ids=[7])
    assert store.get(site_id, "k")[0] is None


def test_the_memory_store_drops_the_least_recently_used():
    store = MemoryStateStore(capacity=2, ttl_s=60)
    for key in ("a", "b"):
        store.put(1, key, _state(key=key), store.get(1, key)[1])
    store.get(1, "a")
    store.put(1, "c", _state(key="c"), store.get(1, "c")[1])
    assert [store.get(1, k)[0] is not None for k in ("a", "b", "c")] == [True, False, True]


def test_a_state_survives_its_encoding():
    at = datetime(2026, 5, 1, 12, 30, tzinfo=UTC)
    state = VisitorState(
        visitor_id=3,
        visitor_key="v",
        first_seen_at=at,
        last_seen_at=at,
        order_count=2,
        stage="loyal",
        has_facts=True,
        attributes={"plan": "gold"},
        last_popup_end_at=at,
        assignments={
            5: AssignmentState(5, 9, False, False, True, 3, at, None, 11),
            6: AssignmentState(6, None, True, False, False, 0, None, None, 12),
        },
    )
    assert decode_state(encode_state(state)) == state


def test_the_feed_after_a_pause_longer_than_the_ttl_starts_from_the_newest_event(
    client, make_site, make_campaign, monkeypatch
):
    """No decide for longer than the TTL: every kept state has expired, and the feed does not
    read everything stored meanwhile; nor more than one read takes under a flood of events."""
    site = make_site()
    campaign = make_campaign(site)
    feed, store = ChangedVisitorsFeed(), MemoryStateStore(capacity=10, ttl_s=60)
    feed.read(store, ttl_s=60)
    _impressions(client, site, campaign, 3)
    store.put(site["id"], "kept-visitor", _state(key="kept-visitor"), store.get(1, "x")[1])
    monkeypatch.setattr(feed, "_read_at", time.monotonic() - 61)
    with statements_sent() as sent:
        feed.read(store, ttl_s=60)
    assert len(sent) == 1 and "desc" in sent[0].sql.lower()  # the newest id, nothing else
    assert store.get(site["id"], "kept-visitor")[0] is None

    monkeypatch.setattr(state_store, "_FEED_MAX_ROWS", 2)
    store.put(site["id"], "kept-visitor", _state(key="kept-visitor"), store.get(1, "x")[1])
    _impressions(client, site, campaign, 3, visitor="visitor-0002")
    feed.read(store, ttl_s=60)  # three new events: more than one read takes
    assert store.get(site["id"], "kept-visitor")[0] is None
    _impressions(client, site, campaign, 1, visitor="visitor-0003")
    store.put(site["id"], "kept-visitor", _state(key="kept-visitor"), store.get(1, "x")[1])
    feed.read(store, ttl_s=60)  # one event of another visitor: read, and only theirs forgotten
    assert store.get(site["id"], "kept-visitor")[0] is not None
