"""Start the Funnelcake server under gunicorn for a benchmark, and the worker that production runs
beside it; wait until they are ready."""

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def server_environment(database_url: str, instance_dir: str) -> dict:
    """This process's environment (``PYTHONPATH`` included, so the children import the same
    code) with the benchmark's configuration: rate limits and promotion rounds off."""
    return {
        **os.environ,
        "FUNNELCAKE_DATABASE_URL": database_url,
        "FUNNELCAKE_RATELIMIT_ENABLED": "false",
        "FUNNELCAKE_INSTANCE_DIR": instance_dir,
        "FUNNELCAKE_EVALUATE_INTERVAL_S": "0",
    }


def start_gunicorn(database_url: str, instance_dir: str, port: int, workers: int):
    """gunicorn with the production configuration (``widget_server/gunicorn_conf.py``) and
    ``workers`` workers on 127.0.0.1:``port``, once it answers ``/readyz``; exits the benchmark
    if it does not start. Its workers only serve requests: stored events wait for
    :func:`start_worker`'s process."""
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            "python:widget_server.gunicorn_conf",
            "-w",
            str(workers),
            "-b",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
            "widget_server:create_app()",
        ],
        cwd=ROOT,
        env=server_environment(database_url, instance_dir),
    )
    for _ in range(200):
        if server.poll() is not None:
            sys.exit(f"gunicorn exited with {server.returncode}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1)
            return server
        except OSError:
            time.sleep(0.1)
    server.terminate()
    sys.exit("gunicorn did not answer /readyz within 20 s")


def start_worker(database_url: str, instance_dir: str, log_path: Path):
    """``funnelcake worker`` (the applier, webhook deliveries) with the production defaults, its
    output in ``log_path``; exits the benchmark if it stops within its first second."""
    with open(log_path, "wb") as log:  # the child keeps its own copy of the file
        worker = subprocess.Popen(
            [sys.executable, "-m", "widget_server", "worker"],
            cwd=ROOT,
            env=server_environment(database_url, instance_dir),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        worker.wait(timeout=1.0)
    except subprocess.TimeoutExpired:
        return worker
    sys.exit(f"funnelcake worker exited with {worker.returncode}:\n{log_path.read_text()}")
