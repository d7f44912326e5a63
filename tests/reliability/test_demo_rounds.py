"""Promotion rounds run out of the box: ``funnelcake demo`` on the default configuration runs
them beside its server, and ``funnelcake worker`` (which production runs beside gunicorn, whose
workers and ``create_app`` start nothing) runs them until it is stopped."""

import re
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

from tests.helpers import free_port, migrate, server_environment, until
from widget_server.services.promotion.evaluation import SCHEDULE_NAME

#: A round claims the schedule row, then takes the round's lease row (SQLite).
ROUND_LOCKS = {SCHEDULE_NAME, "evaluate"}


def test_demo_on_the_default_configuration_runs_promotion_rounds(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "widget_server", "demo", "--no-serve"],
        cwd=tmp_path,
        env=server_environment(tmp_path),
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
        env=server_environment(tmp_path, EVALUATE_INTERVAL_S="0.5"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )

    def rounds_ran() -> bool:
        assert server.poll() is None, "the demo exited"
        return locks_taken(tmp_path / "funnelcake.db") == ROUND_LOCKS

    try:
        assert until(rounds_ran, timeout_s=90, interval_s=0.5)
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_the_worker_runs_promotion_rounds_and_stops_on_sigterm(tmp_path):
    database = tmp_path / "funnelcake.db"
    migrate(f"sqlite:///{database}")
    environment = server_environment(
        tmp_path, DATABASE_URL=f"sqlite:///{database}", EVALUATE_INTERVAL_S="0.5"
    )
    worker = subprocess.Popen(
        [sys.executable, "-m", "widget_server", "worker"],
        cwd=tmp_path,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:

        def rounds_ran() -> bool:
            assert worker.poll() is None, worker.stdout.read()
            return locks_taken(database) == ROUND_LOCKS

        assert until(rounds_ran, timeout_s=60, interval_s=0.5)
    finally:
        worker.terminate()
        output, _ = worker.communicate(timeout=30)
    assert worker.returncode == 0, output
    # Two appliers on PostgreSQL, one on SQLite.
    assert re.search(
        r"Worker running: apply-events-1(, apply-events-2)?, deliver-webhooks, response-partials, "
        r"funnel-figures, evaluate\n",
        output,
    ), output
    assert "Worker stopped." in output


def locks_taken(database: Path) -> set[str]:
    """Names of the evaluator lock rows a round has written (none before the first round)."""
    try:
        with closing(sqlite3.connect(database, timeout=5)) as connection:
            return {name for (name,) in connection.execute("SELECT name FROM evaluator_locks")}
    except sqlite3.OperationalError:  # no database or no table yet: the demo is starting
        return set()
