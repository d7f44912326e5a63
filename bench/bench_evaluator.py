"""Evaluation round and results endpoint on PostgreSQL as raw events grow to 10 million.

Seeds a throw-away database with 1,000 running campaigns of 3 variants and grows the events table
in stages (``INSERT ... SELECT generate_series``), rebuilding the rollups from the events at each
stage as ingestion would have kept them. At each stage it times one full evaluation round
(``services.promotion.evaluation.run_round``, median of 3) and
``GET /api/v1/admin/campaigns/<id>/results`` through the Flask test client (median and p95 of
200 random campaigns). Targets: round < 5 s, results < 50 ms, both flat in the number of
events. Each row also shows the machine's 1-minute load average when the stage was timed, since
other work on the host moves the figures.

The database (``fc_bench_evaluator_<pid>``) is created on the server that
``FUNNELCAKE_BENCH_POSTGRES_URL`` names (default ``postgresql://postgres@127.0.0.1:5432/postgres``,
used only to create and drop it) and dropped at the end, also after a failure, unless ``--keep``.

    python bench/bench_evaluator.py                      # stages 10k,1M,5M,10M
    python bench/bench_evaluator.py --stages 1000000,5000000
    FUNNELCAKE_BENCH_POSTGRES_URL=postgresql://postgres@db:5432/postgres python bench/...
"""

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flask_migrate import upgrade  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402
from throwaway_postgres import drop_database, fresh_database  # noqa: E402 (bench/ is the folder)

from widget_server import create_app  # noqa: E402
from widget_server.extensions import db  # noqa: E402
from widget_server.services.platform.tokens import create_token  # noqa: E402
from widget_server.services.promotion import evaluation  # noqa: E402

CAMPAIGNS = 1000
VARIANTS = 3
VISITORS = 1_000_000
DAYS = 30
#: Per process, so two runs on one server do not drop each other's database.
BENCH_DB = f"fc_bench_evaluator_{os.getpid()}"


def seed_catalog(conn) -> None:
    """One site, 1,000 running campaigns (10% bandits) of 3 variants, 1M visitors."""
    conn.execute(
        text(
            "INSERT INTO sites (id, name, site_key, secret, allowed_origins, settings, created_at,"
            " updated_at) VALUES (1, 'Bench', 'pk_bench', 'sk_bench', '[]', '{}', now(), now())"
        )
    )
    # Guardrails that keep every campaign running, so each round does the same work.
    conn.execute(
        text(
            """
            INSERT INTO campaigns (id, site_id, name, kind, status, priority, targeting, trigger,
                frequency, ab, seed, started_at, created_at, updated_at)
            SELECT c, 1, 'Campaign ' || c, 'survey', 'running', 0, '{}', '{"type":"immediate"}',
                '{}',
                json_build_object('metric', 'completion',
                    'method', CASE WHEN c % 10 = 0 THEN 'bandit' ELSE 'sequential' END,
                    'alpha', 0.05, 'min_running_days', 365, 'max_duration_days', 3650,
                    'min_visitors_per_variant', 1000000, 'max_visitors_per_variant', 100000000,
                    'auto_promote', true)::jsonb,
                md5(c::text), now() - interval '30 days', now(), now()
            FROM generate_series(1, :n) AS c
            """
        ),
        {"n": CAMPAIGNS},
    )
    conn.execute(
        text(
            """
            INSERT INTO variants (id, campaign_id, name, is_control, weight, content, created_at,
                updated_at)
            SELECT v, (v - 1) / :k + 1, 'V' || ((v - 1) % :k), (v - 1) % :k = 0, 1.0,
                '{"steps": []}', now(), now()
            FROM generate_series(1, :n) AS v
            """
        ),
        {"n": CAMPAIGNS * VARIANTS, "k": VARIANTS},
    )
    conn.execute(
        text(
            """
            INSERT INTO visitors (id, site_id, visitor_key, attributes, scores, order_count,
                total_spent, email_consent, first_seen_at, last_seen_at)
            SELECT v, 1, 'visitor-' || v, '{}', '{}', 0, 0, false, now(), now()
            FROM generate_series(1, :n) AS v
            """
        ),
        {"n": VISITORS},
    )
    for table in ("sites", "campaigns", "variants", "visitors"):
        conn.execute(
            text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), max(id)) FROM {table}")
        )


def grow_events(conn, start: int, end: int) -> None:
    """Events ``start+1..end``: visitor i sees campaign i % 1000; every 9th also completes."""
    conn.execute(
        text(
            """
            INSERT INTO events (site_id, event_uuid, type, visitor_id, campaign_id, variant_id,
                occurred_at, received_at, data)
            SELECT 1, 'e' || i,
                CASE WHEN i % 9 = 0 THEN 'complete' ELSE 'impression' END,
                (i / :c) % :visitors + 1,
                i % :c + 1,
                (i % :c) * :k + (i / :c) % :k + 1,
                now() - (((i / 7) % :days) || ' days')::interval, now(), '{}'
            FROM generate_series(:start + 1, :end) AS i
            """
        ),
        {
            "start": start,
            "end": end,
            "c": CAMPAIGNS,
            "k": VARIANTS,
            "visitors": VISITORS,
            "days": DAYS,
        },
    )


def rebuild_rollups(conn) -> None:
    """What ingestion keeps on the fly: first impression per visitor, then completions."""
    conn.execute(text("TRUNCATE variant_metrics"))
    conn.execute(
        text(
            """
            INSERT INTO variant_metrics (campaign_id, variant_id, metric, day, visitors,
                conversions, value_sum, value_sum_squares)
            WITH firsts AS (
                SELECT campaign_id, variant_id, visitor_id,
                    min(occurred_at) FILTER (WHERE type = 'impression') AS seen_at,
                    bool_or(type = 'complete') AS completed
                FROM events GROUP BY campaign_id, variant_id, visitor_id
            )
            SELECT campaign_id, variant_id, m.metric, seen_at::date,
                count(*) FILTER (WHERE m.metric = 'exposure'),
                count(*) FILTER (WHERE m.metric = 'completion' AND completed),
                0, 0
            FROM firsts CROSS JOIN (VALUES ('exposure'), ('completion')) AS m(metric)
            WHERE seen_at IS NOT NULL
            GROUP BY campaign_id, variant_id, m.metric, seen_at::date
            """
        )
    )


def time_round(app) -> float:
    timings = []
    for _ in range(3):
        with app.app_context():
            report = evaluation.run_round()
            assert report.acquired and report.evaluated == CAMPAIGNS, report
            timings.append(report.duration_s)
            db.session.remove()
    return statistics.median(timings)


def time_results(app, token) -> tuple[float, float]:
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    rng = random.Random(1)
    timings = []
    for _ in range(200):
        campaign_id = rng.randint(1, CAMPAIGNS)
        started = time.perf_counter()
        response = client.get(f"/api/v1/admin/campaigns/{campaign_id}/results", headers=headers)
        timings.append(time.perf_counter() - started)
        assert response.status_code == 200, response.json
    timings.sort()
    return statistics.median(timings), timings[int(len(timings) * 0.95) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--stages",
        default="10000,1000000,5000000,10000000",
        help="comma-separated event totals to grow to and time at (default: %(default)s)",
    )
    parser.add_argument(
        "--keep", action="store_true", help=f"keep the database {BENCH_DB} afterwards"
    )
    args = parser.parse_args()
    stages = [int(s) for s in args.stages.split(",")]
    if stages != sorted(stages) or stages[0] < 1:
        parser.error("--stages must be positive and increasing")

    url = fresh_database(BENCH_DB)
    try:
        run(url, stages)
    finally:
        if args.keep:
            print(f"kept database {BENCH_DB}")
        else:
            drop_database(BENCH_DB)


def run(url: str, stages: list[int]) -> None:
    app = create_app(
        {
            "DATABASE_URL": url,
            "SECRET_KEY": "bench",
            "RATELIMIT_ENABLED": False,
            "EVALUATE_INTERVAL_S": 0,
            "DB_CONNECT_TIMEOUT_S": 10,
        }
    )
    with app.app_context():
        upgrade(directory=app.extensions["migrate"].directory)
        token = create_token("bench")
        db.session.remove()
        db.engine.dispose()
    seeder = create_engine(url)
    with seeder.begin() as conn:
        seed_catalog(conn)

    with seeder.connect() as conn:
        version = conn.execute(text("SHOW server_version")).scalar()
    print(
        f"{CAMPAIGNS} running campaigns x {VARIANTS} variants ({CAMPAIGNS // 10} bandits), "
        f"{VISITORS:,} visitors, PostgreSQL {version}, {os.cpu_count()} CPUs"
    )
    print(f"{'events':>12} {'seed s':>8} {'rollup rows':>12} {'round s':>8} "
          f"{'results p50 ms':>15} {'results p95 ms':>15} {'load 1m':>8}")  # fmt: skip
    have = 0
    for target in stages:
        started = time.perf_counter()
        with seeder.begin() as conn:
            grow_events(conn, have, target)
            rebuild_rollups(conn)
        with seeder.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))
            rollup_rows = conn.execute(text("SELECT count(*) FROM variant_metrics")).scalar()
        seed_s = time.perf_counter() - started
        have = target
        round_s = time_round(app)
        p50, p95 = time_results(app, token)
        load = os.getloadavg()[0]
        print(f"{target:>12,} {seed_s:>8.1f} {rollup_rows:>12,} {round_s:>8.3f} "
              f"{p50 * 1000:>15.1f} {p95 * 1000:>15.1f} {load:>8.1f}", flush=True)  # fmt: skip
    seeder.dispose()
    with app.app_context():
        db.engine.dispose()


if __name__ == "__main__":
    main()
