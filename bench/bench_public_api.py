"""Requests per second of decide and events under gunicorn, next to the bare /healthz ceiling.

Run: ``python bench/bench_public_api.py [--database-url URL] [--seconds 10] [--connections 32]``

It creates a fresh database (a temporary SQLite file unless ``--database-url`` names an empty
PostgreSQL database), seeds a site with 5 running survey campaigns, starts gunicorn on 127.0.0.1,
drives it with wrk (Lua scripts in bench/wrk/) and prints a table. For events it also checks that
every acknowledged event was stored (nothing lost).
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def seed(database_url: str) -> dict:
    """Migrate and create the benchmark site; return its key and one campaign/variant id."""
    from flask_migrate import upgrade

    from widget_server import create_app
    from widget_server.services import catalog

    app = create_app({"DATABASE_URL": database_url, "RATELIMIT_ENABLED": False})
    with app.app_context():
        upgrade(directory=app.extensions["migrate"].directory)
        site = catalog.create_site({"name": "Bench", "allowed_origins": ["https://shop.example"]})
        site.site_key = "pk_bench"
        first = None
        for i in range(5):
            steps = [{"id": "q1", "type": "single_choice", "question": "?",
                      "options": [{"id": "a", "label": "A"}, {"id": "b", "label": "B"}]}]
            campaign = catalog.create_campaign(site, {
                "name": f"c{i}", "kind": "survey", "priority": i,
                "targeting": {"url_exclude": ["/checkout*"]},
                "trigger": {"type": "delay", "seconds": 2}, "frequency": {}, "ab": {},
                "variants": [{"name": "A", "is_control": True, "weight": 1,
                              "content": {"steps": steps}},
                             {"name": "B", "weight": 1, "content": {"steps": steps}}],
            })
            catalog.change_status(campaign, "start")
            first = first or campaign
        return {"SITE_KEY": "pk_bench", "CAMPAIGN_ID": str(first.id),
                "VARIANT_ID": str(first.variants[0].id)}


def count_events(database_url: str) -> int:
    from sqlalchemy import func, select

    from widget_server import create_app
    from widget_server.extensions import db
    from widget_server.models import Event

    app = create_app({"DATABASE_URL": database_url})
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Event))


def run_wrk(script: str, url: str, seconds: int, connections: int, env: dict) -> dict:
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency",
         "-s", str(ROOT / "bench" / "wrk" / script), url],
        capture_output=True, text=True, check=True, env={**os.environ, **env},
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    return {"rps": rps, "requests": total, "non2xx": int(non2xx.group(1)) if non2xx else 0,
            "p99_ms": float(p99.group(1)) * scale[p99.group(2)] if p99 else float("nan")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--port", type=int, default=5077)
    args = parser.parse_args()

    tmp = tempfile.mkdtemp(prefix="fc-bench-")
    database_url = args.database_url or f"sqlite:///{tmp}/bench.db"
    env = seed(database_url)
    server_env = {**os.environ, "FUNNELCAKE_DATABASE_URL": database_url,
                  "FUNNELCAKE_RATELIMIT_ENABLED": "false", "FUNNELCAKE_INSTANCE_DIR": tmp}
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-w", str(args.workers), "-b",
         f"127.0.0.1:{args.port}", "--log-level", "warning", "widget_server:create_app()"],
        cwd=ROOT, env=server_env,
    )
    base = f"http://127.0.0.1:{args.port}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(base + "/readyz", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        results = {}
        for name in ("healthz", "decide", "events"):
            run_wrk(f"{name}.lua", base, 2, args.connections, env)  # warm-up
            results[name] = run_wrk(f"{name}.lua", base, args.seconds, args.connections, env)
        stored = count_events(database_url)
    finally:
        server.terminate()
        server.wait(timeout=10)

    backend = database_url.split(":", 1)[0]
    print(f"\n{backend}, gunicorn -w {args.workers}, wrk -t2 -c{args.connections} "
          f"-d{args.seconds}s")
    print(f"{'endpoint':<10}{'req/s':>10}{'p99 ms':>10}{'non-2xx':>9}{'% of bare':>11}")
    ceiling = results["healthz"]["rps"]
    for name, r in results.items():
        print(f"{name:<10}{r['rps']:>10.0f}{r['p99_ms']:>10.1f}{r['non2xx']:>9}"
              f"{100 * r['rps'] / ceiling:>10.0f}%")
    acknowledged = 10 * sum(results[n]["requests"] - results[n]["non2xx"] for n in ["events"])
    print(f"events/s ingested: {10 * results['events']['rps']:.0f}; stored {stored} events, "
          f"acknowledged in the timed run >= {acknowledged} (warm-up adds more)")


if __name__ == "__main__":
    main()
