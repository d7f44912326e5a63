"""Promotion rounds run out of the box in the servers: ``funnelcake demo`` on the default
configuration starts the evaluator and a served demo really runs rounds; so do gunicorn workers
under the shipped configuration (its ``post_worker_init`` hook; ``create_app`` starts nothing)."""

import os
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

from tests.reliability.servers import Gunicorn, free_port, migrate
from widget_server.services.promotion.evaluation import SCHEDULE_NAME


def environment(tmp_path: Path, **settings) -> dict:
    """This process's environment without any FUNNELCAKE_ setting, in a fresh instance folder."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FUNNELCAKE_")}
    env["FUNNELCAKE_INSTANCE_DIR"] = str(tmp_path)
    env.update({f"FUNNELCAKE_{name}": value for name, value in settings.items()})
    return env


def test_demo_on_the_default_configuration_runs_promotion_rounds(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "widget_server", "demo", "--no-serve"],
        cwd=tmp_path,
        env=environment(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr
    [line] = [line for line in result.stdout.splitlines() if line.startswith("Promotion:")]
    interval_s = float(line.split("a round every ")[1].split(" s ")[0])
    assert 0 < interval_s <= 3600


def test_served_demo_promotion_rounds_really_run(tmp_path):
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "widget_server", "demo", "--port", str(port)],
        cwd=tmp_path,
        env=environment(tmp_path, EVALUATE_INTERVAL_S="0.5"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 90
        # A round claims the schedule row, then takes the round's lease row (SQLite).
        expected = {SCHEDULE_NAME, "evaluate"}
        rounds: set[str] = set()
        while rounds != expected and time.monotonic() < deadline:
            assert server.poll() is None, "the demo exited"
            time.sleep(0.5)
            rounds = locks_taken(tmp_path / "funnelcake.db")
        assert rounds == expected
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_gunicorn_workers_run_promotion_rounds_under_the_shipped_configuration(tmp_path):
    database = tmp_path / "funnelcake.db"
    migrate(f"sqlite:///{database}")
    server = Gunicorn(
        f"sqlite:///{database}",
        workers=2,
        env={
            "GUNICORN_CMD_ARGS": "--config python:widget_server.gunicorn_conf",
            "FUNNELCAKE_EVALUATE_INTERVAL_S": "0.5",
        },
    )
    try:
        deadline = time.monotonic() + 60
        expected = {SCHEDULE_NAME, "evaluate"}
        rounds: set[str] = set()
        while rounds != expected and time.monotonic() < deadline:
            assert server.process.poll() is None, server.log()
            time.sleep(0.5)
            rounds = locks_taken(database)
        assert rounds == expected, server.log()
    finally:
        server.stop()


def locks_taken(database: Path) -> set[str]:
    """Names of the evaluator lock rows a round has written (none before the first round)."""
    try:
        with closing(sqlite3.connect(database, timeout=5)) as connection:
            return {name for (name,) in connection.execute("SELECT name FROM evaluator_locks")}
    except sqlite3.OperationalError:  # no database or no table yet: the demo is starting
        return set()
