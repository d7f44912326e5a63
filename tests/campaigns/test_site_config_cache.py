"""The per-worker cache of site configurations: one reload at a time, and no connection kept."""

from widget_server.extensions import db
from widget_server.services.campaigns.site_config import (
    SiteConfig,
    SiteConfigCache,
    get_site_config,
)

OLD = SiteConfig(id=1, site_key="pk_a", allowed_origins=frozenset(), settings={})
NEW = SiteConfig(id=1, site_key="pk_a", allowed_origins=frozenset(), settings={"v": 2})


def test_an_expired_site_is_reloaded_by_one_request_while_the_others_use_the_old_copy():
    cache = SiteConfigCache()
    cache.put("pk_a", expires_at=10.0, config=OLD)
    assert cache.get("pk_a", now=5.0) == (True, OLD)
    assert cache.get("pk_a", now=11.0) == (False, None)  # this request reloads
    assert cache.get("pk_a", now=11.0) == (True, OLD)  # the others meanwhile
    cache.put("pk_a", expires_at=21.0, config=NEW)
    cache.loaded("pk_a")
    assert cache.get("pk_a", now=12.0) == (True, NEW)
    assert cache.get("pk_a", now=22.0) == (False, None)  # the next expiry: reload again


def test_a_failed_reload_lets_the_next_request_try():
    cache = SiteConfigCache()
    cache.put("pk_a", expires_at=10.0, config=OLD)
    assert cache.get("pk_a", now=11.0) == (False, None)
    cache.loaded("pk_a")  # it failed: nothing put
    assert cache.get("pk_a", now=11.0) == (False, None)


def test_an_invalidated_site_is_never_served_from_the_old_copy():
    cache = SiteConfigCache()
    cache.put("pk_a", expires_at=10.0, config=OLD)
    assert cache.get("pk_a", now=11.0) == (False, None)  # a reload under way
    cache.drop("pk_a")  # an admin change
    assert cache.get("pk_a", now=11.0) == (False, None)


def test_loading_the_site_hands_the_connection_back(client, make_site):
    site = make_site()
    db.session.remove()
    config = get_site_config(site["site_key"])
    assert config.id == site["id"]
    assert not db.session().in_transaction()


def test_one_request_per_interval_checks_the_version():
    cache = SiteConfigCache()
    cache.put("pk_a", expires_at=1e12, config=OLD)
    import time

    now = time.monotonic()
    assert not cache.check_due("pk_a", now, every_s=0.5)  # just loaded
    assert cache.check_due("pk_a", now + 0.6, every_s=0.5)  # this request checks
    assert not cache.check_due("pk_a", now + 0.6, every_s=0.5)  # the others do not
    assert cache.check_due("pk_a", now + 1.2, every_s=0.5)
