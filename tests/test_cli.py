"""The funnelcake command: demo setup is idempotent, its history written once, tokens work
against the admin API."""

import subprocess
import sys
import urllib.request

from sqlalchemy import func, select

from tests.helpers import free_port, server_environment, wait_for_server
from widget_server.extensions import db
from widget_server.models import Campaign, Event, Order, Site, Spin, StageChange, Visitor
from widget_server.services.promotion.evaluation import run_round

#: The tables the demo's history writes.
HISTORY_TABLES = (Visitor, Event, Spin, Order, StageChange)


def row_counts() -> dict[str, int]:
    return {
        model.__tablename__: db.session.scalar(select(func.count()).select_from(model))
        for model in HISTORY_TABLES
    }


def test_create_token_prints_a_working_token(app, runner, client):
    result = runner.invoke(args=["create-token", "--name", "ci"])
    assert result.exit_code == 0, result.output
    token = result.output.strip()
    response = client.get("/api/v1/admin/sites", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200


def test_demo_sets_up_once_and_reuses_everything(app, runner, client):
    first = runner.invoke(args=["demo", "--no-serve"])
    assert first.exit_code == 0, first.output
    assert "Demo store:  http://127.0.0.1:5000/demo/" in first.output
    token_lines = [line for line in first.output.splitlines() if line.startswith("Admin token: ")]
    assert len(token_lines) == 1
    written = row_counts()
    second = runner.invoke(args=["demo", "--no-serve"])
    assert second.exit_code == 0, second.output
    assert token_lines[0] in second.output.splitlines()
    assert row_counts() == written  # the history is written once
    assert "History:     none added: the store has visitors" in second.output
    assert db.session.scalar(select(func.count()).select_from(Site)) == 1
    survey = db.session.scalar(select(Campaign).where(Campaign.kind == "survey"))
    assert survey.status == "running"
    assert [s["id"] for s in survey.variants[0].content["steps"]] == [
        "emotional",
        "intentional",
        "action",
    ]
    token = token_lines[0].removeprefix("Admin token: ")
    response = client.get("/api/v1/admin/sites", headers={"Authorization": f"Bearer {token}"})
    assert response.json["sites"][0]["allowed_origins"] == [
        "http://127.0.0.1:5000",
        "http://localhost:5000",
    ]


def test_demo_empty_starts_without_the_history(app, runner):
    result = runner.invoke(args=["demo", "--no-serve", "--empty"])
    assert result.exit_code == 0, result.output
    assert "History:     none (--empty)" in result.output
    assert set(row_counts().values()) == {0}
    assert db.session.scalar(select(func.count()).select_from(Campaign)) == 2


def test_promotion_round_on_the_seeded_demo_promotes_the_leading_variant(app, runner):
    """The history makes the friendly variant a clear winner over weeks, past the policy's
    minimum visitors and running days, so the first automatic round promotes it."""
    assert runner.invoke(args=["demo", "--no-serve"]).exit_code == 0
    survey = db.session.scalar(select(Campaign).where(Campaign.kind == "survey"))
    report = run_round()
    assert report.promoted == [survey.id]
    db.session.refresh(survey)
    winner = next(v for v in survey.variants if v.id == survey.promoted_variant_id)
    assert winner.name == "B: friendly" and not winner.is_control


def test_demo_store_pages_carry_the_snippet(app, runner, client):
    runner.invoke(args=["demo", "--no-serve"])
    page = client.get("/demo/")
    assert page.status_code == 200
    assert b'src="/static/widget.js"' in page.data
    assert b'data-site="pk_demo_store"' in page.data
    assert client.get("/demo/nowhere").status_code == 404


def test_demo_command_serves_the_store_until_stopped(tmp_path):
    """The README's first command: ``python -m widget_server demo`` answers on its port."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "demo.log"
    with open(log_path, "wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "widget_server", "demo", "--port", str(port)],
            cwd=tmp_path,
            env=server_environment(tmp_path),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_server(base, server, log_path.read_text)
        with urllib.request.urlopen(f"{base}/demo/", timeout=10) as page:
            html = page.read().decode()
        assert 'data-site="pk_demo_store"' in html
        assert (tmp_path / "funnelcake.db").exists()
    finally:
        server.terminate()
        server.wait(timeout=10)
