"""Start the Funnelcake server under gunicorn for a benchmark, and wait until it is ready."""

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def start_gunicorn(database_url: str, instance_dir: str, port: int, workers: int):
    """gunicorn with the production configuration (``widget_server/gunicorn_conf.py``) and
    ``workers`` workers on 127.0.0.1:``port`` (rate limits and promotion rounds off), once it
    answers ``/readyz``; exits the benchmark if it does not start."""
    env = {
        **os.environ,
        "FUNNELCAKE_DATABASE_URL": database_url,
        "FUNNELCAKE_RATELIMIT_ENABLED": "false",
        "FUNNELCAKE_INSTANCE_DIR": instance_dir,
        "FUNNELCAKE_EVALUATE_INTERVAL_S": "0",
    }
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
        env=env,
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
