"""decide's paths in one process, next to the bare endpoint: a visitor whose state is kept, a
new visitor. No server and no network: Flask's test client, so the figures are the app's own
cost per request (gunicorn, gevent and the socket add the same to every endpoint).

Run: ``python bench/bench_decide_paths.py [--database-url URL] [--requests 2000]``

A fresh SQLite file unless ``--database-url`` names an empty PostgreSQL database; a site with 5
running surveys; 200 visitors decided once (their states kept), then ``--requests`` calls of
each kind. Prints ms per request and each path as a share of ``/healthz``.
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.helpers import (  # noqa: E402 (the repository's root first)
    AdminClient,
    configured_app,
    create_campaign,
    create_site,
    decide,
    migrate,
)
from widget_server.services.platform.tokens import create_token  # noqa: E402


def per_request_ms(call, count: int) -> float:
    started = time.perf_counter()
    for n in range(count):
        call(n)
    return (time.perf_counter() - started) / count * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="an empty PostgreSQL database (default: SQLite)")
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    folder = tempfile.mkdtemp()
    url = args.database_url or f"sqlite:///{folder}/bench.db"
    migrate(url)
    app = configured_app(
        url, CONFIG_CACHE_TTL_S=60.0, CONFIG_CHECK_S=3600.0, EVENTS_APPLY_INLINE=False
    )
    app.instance_path = folder
    with app.app_context():
        client = app.test_client()
        site = create_site(AdminClient(client, create_token("bench")))
        for n in range(5):
            create_campaign(AdminClient(client, create_token("bench")), site, name=f"survey {n}")
        for n in range(200):
            assert decide(client, site, f"kept-visitor-{n:05d}").status_code == 200
        count = args.requests
        bare = per_request_ms(lambda n: client.get("/healthz"), count)
        kept = per_request_ms(lambda n: decide(client, site, f"kept-visitor-{n % 200:05d}"), count)
        new = per_request_ms(lambda n: decide(client, site, f"new-visitor-{n:06d}"), count // 4)
    print(f"{'path':<28}{'ms per request':>15}{'% of bare':>11}")
    for name, ms in (("healthz", bare), ("decide, state kept", kept), ("decide, new visitor", new)):
        print(f"{name:<28}{ms:>15.3f}{bare / ms:>11.0%}")


if __name__ == "__main__":
    main()
