"""``create_app`` only builds the app: no thread starts, and each app keeps its own caches."""

import threading

import pytest
from sqlalchemy import update

from widget_server.extensions import db
from widget_server.models import Site
from widget_server.services.campaigns import site_config

#: A configuration under which a server would run background rounds.
SERVER_CONFIG = {"TESTING": False, "EVALUATE_INTERVAL_S": 30}


def test_create_app_starts_no_thread(make_app):
    before = set(threading.enumerate())

    app = make_app(**SERVER_CONFIG)

    assert set(threading.enumerate()) - before == set()
    assert not [name for name in app.extensions if name.startswith("funnelcake.worker")]


@pytest.mark.parametrize("command", [["create-token"], ["evaluate"]])
def test_commands_other_than_the_demo_start_no_evaluator(app, runner, monkeypatch, command):
    for name, value in SERVER_CONFIG.items():
        monkeypatch.setitem(app.config, name, value)
    before = set(threading.enumerate())

    result = runner.invoke(args=command)

    assert result.exit_code == 0, result.output
    assert not [t for t in set(threading.enumerate()) - before if t.name.startswith("funnelcake-")]


def test_two_apps_keep_separate_site_config_caches(app, make_app, make_site, monkeypatch):
    monkeypatch.setitem(app.config, "CONFIG_CACHE_TTL_S", 60.0)
    other = make_app(CONFIG_CACHE_TTL_S=60)
    site_key = make_site(origins=["https://first.example"])["site_key"]

    def origins_seen_by(an_app) -> set[str]:
        with an_app.app_context():
            return set(site_config.get_site_config(site_key).allowed_origins)

    def set_origins_behind_the_caches(origin: str) -> None:
        db.session.execute(
            update(Site).where(Site.site_key == site_key).values(allowed_origins=[origin])
        )
        db.session.commit()

    assert origins_seen_by(app) == {"https://first.example"}
    set_origins_behind_the_caches("https://second.example")
    assert origins_seen_by(app) == {"https://first.example"}  # cached in this app
    assert origins_seen_by(other) == {"https://second.example"}  # not in the other

    set_origins_behind_the_caches("https://third.example")
    site_config.invalidate(site_key)  # this app's cache only
    assert origins_seen_by(app) == {"https://third.example"}
    assert origins_seen_by(other) == {"https://second.example"}
