"""The funnel endpoint on 100,000 visitors and 300,000 orders, and the cost of restaging.

Run: ``python bench/bench_funnel.py [--admin-url postgresql://postgres@127.0.0.1:5432/postgres]
[--visitors 100000] [--orders 300000] [--runs 20] [--live-runs 5] [--keep]``

It creates a throw-away PostgreSQL database, migrates it, seeds one site (the demo loyalty
questionnaire with two variants, visitors with stages, scores and assignments, orders from
customers and guests, a survey response from three visitors in four, twelve weeks of stage
history) with ``INSERT ... SELECT generate_series``,
then times through the Flask test client:

* the funnel figures computed live (every query, as a snapshot recomputation runs them),
* ``GET /api/v1/admin/sites/<id>/funnel?campaign_id=<id>`` (target: under 200 ms) answered from
  a fresh snapshot, and while snapshots are being recomputed in the background,
* ``GET /api/v1/admin/sites/<id>/segments.csv`` streamed to the end (time and peak memory),

and, in the service layer, the added cost of restaging one visitor after an answer
(``funnel.on_answers``) and after an order (``funnel.on_order``) (target: under 2 ms each), with
the SQL statements each makes and the time of one bare round trip for scale.
"""

import argparse
import contextlib
import os
import statistics
import sys
import time
import tracemalloc
import uuid
from pathlib import Path

from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SEED_SQL = """
INSERT INTO visitors (site_id, visitor_key, customer_id, email_consent, attributes, scores,
                      stage, order_count, total_spent, first_seen_at, last_seen_at)
SELECT :site, 'bench-' || lpad(i::text, 9, '0'),
       CASE WHEN i % 10 < 7 THEN 'c-' || i END, false,
       jsonb_build_object('plan', (ARRAY['free','gold','silver'])[1 + i % 3]),
       CASE WHEN i % 4 = 0 THEN '{}'::jsonb ELSE jsonb_build_object(
            'emotional', 1 + (i * 7) % 5, 'intentional', 1 + (i * 3) % 5,
            'csat', 1 + (i * 11) % 5, 'nps', (i * 13) % 11) END,
       (ARRAY['new_visitor','customer','repeat_customer','emotional','intentional','advocate'])
           [1 + (i * 17) % 6],
       0, 0, now() - (i % 90) * interval '1 day', now()
FROM generate_series(1, :visitors) AS i;

INSERT INTO orders (site_id, order_ref, customer_id, visitor_id, total, currency,
                    ordered_at, received_at)
SELECT :site, 'o-' || g.i, v.customer_id, CASE WHEN g.i % 20 = 0 THEN NULL ELSE v.id END,
       round((5 + random() * 120)::numeric, 2), 'EUR',
       now() - (g.i % 365) * interval '1 day', now()
FROM (SELECT i, (SELECT min(id) FROM visitors WHERE site_id = :site)
                + floor(power(random(), 2) * :visitors)::int AS visitor_id
      FROM generate_series(1, :orders) AS i) g
JOIN visitors v ON v.id = g.visitor_id;

UPDATE visitors v SET order_count = o.n, total_spent = o.spent
FROM (SELECT visitor_id, count(*) AS n, sum(total) AS spent FROM orders
      WHERE site_id = :site AND visitor_id IS NOT NULL GROUP BY visitor_id) o
WHERE v.id = o.visitor_id;

INSERT INTO assignments (campaign_id, visitor_id, variant_id, holdout, sampled_out, impressions,
                         assigned_at)
SELECT :campaign, v.id, CASE WHEN v.id % 2 = 0 THEN :variant_a ELSE :variant_b END,
       false, false, 1, now()
FROM visitors v WHERE v.site_id = :site;

INSERT INTO responses (campaign_id, variant_id, visitor_id, answers, completed, started_at,
                       updated_at)
SELECT :campaign, CASE WHEN v.id % 2 = 0 THEN :variant_a ELSE :variant_b END, v.id,
       jsonb_build_object(
           'emotional', jsonb_build_object('value', 1 + (v.id * 7) % 5, 'at', '2026-01-01'),
           'intentional', jsonb_build_object('value', 1 + (v.id * 3) % 5, 'at', '2026-01-01')),
       true, now(), now()
FROM visitors v WHERE v.site_id = :site AND v.scores <> '{}'::jsonb;

INSERT INTO stage_changes (site_id, visitor_id, from_stage, to_stage, cause, changed_at)
SELECT :site, v.id, NULL, v.stage, 'answer', now() - ((v.id * 7) % 84) * interval '1 day'
FROM visitors v WHERE v.site_id = :site;

INSERT INTO stage_changes (site_id, visitor_id, from_stage, to_stage, cause, changed_at)
SELECT :site, v.id, 'new_visitor', 'customer', 'order', now() - ((v.id * 5) % 84) * interval '1 day'
FROM visitors v WHERE v.site_id = :site AND v.order_count > 0
"""


def create_database(admin_url: str) -> str:
    name = f"fc_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return admin_url.rsplit("/", 1)[0] + f"/{name}"


def drop_database(admin_url: str, url: str) -> None:
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)'))
    engine.dispose()


def timed(fn, runs: int) -> list[float]:
    durations = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        durations.append((time.perf_counter() - start) * 1000)
    return durations


def report(name: str, durations: list[float]) -> None:
    ordered = sorted(durations)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    print(f"{name:<48} median {statistics.median(ordered):8.2f} ms   p95 {p95:8.2f} ms")


def backend_cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of a local PostgreSQL backend (None when not readable)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Restaging:
    """Wall time, statements and CPU (app + database backend) of one kind of restaging."""

    def __init__(self, cause: str):
        self.cause = cause
        self.wall_ms: list[float] = []
        self.statements: list[int] = []
        self.app_cpu_s = 0.0
        self.db_cpu_s: float | None = 0.0

    @contextlib.contextmanager
    def measure(self, statements: list, backend: int):
        statements.clear()
        db_before, cpu_before = backend_cpu_s(backend), time.process_time()
        start = time.perf_counter()
        yield
        self.wall_ms.append((time.perf_counter() - start) * 1000)
        self.app_cpu_s += time.process_time() - cpu_before
        db_after = backend_cpu_s(backend)
        if db_before is None or db_after is None or self.db_cpu_s is None:
            self.db_cpu_s = None
        else:
            self.db_cpu_s += db_after - db_before
        self.statements.append(len(statements))

    def report(self) -> None:
        calls = len(self.wall_ms)
        report(f"restage after an {self.cause} (1 visitor), wall", self.wall_ms)
        db_ms = "n/a" if self.db_cpu_s is None else f"{1000 * self.db_cpu_s / calls:.2f} ms"
        print(
            f"  CPU per call: app {1000 * self.app_cpu_s / calls:.2f} ms + PostgreSQL {db_ms}; "
            f"SQL statements {min(self.statements)}-{max(self.statements)}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--admin-url",
        default=os.environ.get(
            "FUNNELCAKE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    parser.add_argument("--visitors", type=int, default=100_000)
    parser.add_argument("--orders", type=int, default=300_000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--live-runs", type=int, default=5, help="Runs of the live computation.")
    parser.add_argument("--keep", action="store_true", help="Keep the database afterwards.")
    args = parser.parse_args()

    from flask_migrate import upgrade
    from sqlalchemy import event, select

    from widget_server import create_app
    from widget_server.extensions import db, normalise_database_url
    from widget_server.models import Campaign, Visitor
    from widget_server.schemas.content import load_content
    from widget_server.services import funnel
    from widget_server.services.campaigns import catalog
    from widget_server.services.campaigns.templates import loyalty_questionnaire
    from widget_server.services.funnel.figures import funnel_figures
    from widget_server.services.platform.tokens import create_token

    admin_url = normalise_database_url(args.admin_url)
    url = create_database(admin_url)
    app = create_app(
        {
            "DATABASE_URL": url,
            "RATELIMIT_ENABLED": False,
            "TESTING": True,
            "FUNNEL_FIGURES_TTL_S": 30.0,
        }
    )
    try:
        with app.app_context():
            upgrade(directory=app.extensions["migrate"].directory)
            site = catalog.create_site({"name": "Bench", "allowed_origins": []})
            campaign = catalog.create_campaign(
                site,
                {
                    "name": "Loyalty",
                    "kind": "survey",
                    "variants": [
                        {
                            "name": "A",
                            "weight": 1,
                            "content": load_content("survey", loyalty_questionnaire("A")),
                        },
                        {
                            "name": "B",
                            "weight": 1,
                            "content": load_content("survey", loyalty_questionnaire("B")),
                        },
                    ],
                },
            )
            variant_a, variant_b = (v.id for v in campaign.variants)
            token = create_token("bench")
            started = time.perf_counter()
            for statement in SEED_SQL.split(";\n"):
                if statement.strip():
                    # The app's 10 s statement timeout is for requests, not for seeding.
                    db.session.execute(text("SET LOCAL statement_timeout = 0"))
                    db.session.execute(
                        text(statement),
                        {
                            "site": site.id,
                            "campaign": campaign.id,
                            "variant_a": variant_a,
                            "variant_b": variant_b,
                            "visitors": args.visitors,
                            "orders": args.orders,
                        },
                    )
                    db.session.commit()
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("SET statement_timeout = 0"))
                conn.execute(text("VACUUM ANALYZE"))  # the steady state autovacuum keeps
            counts = db.session.execute(
                text(
                    "SELECT (SELECT count(*) FROM visitors), (SELECT count(*) FROM orders),"
                    " (SELECT count(*) FROM stage_changes)"
                )
            ).one()
            print(
                f"seeded {counts[0]:,} visitors, {counts[1]:,} orders, {counts[2]:,} stage "
                f"changes in {time.perf_counter() - started:.1f} s"
            )
            site_id, campaign_id = site.id, campaign.id

        client = app.test_client()
        headers = {"Authorization": f"Bearer {token}"}
        funnel_url = f"/api/v1/admin/sites/{site_id}/funnel?campaign_id={campaign_id}"

        def get_funnel():
            response = client.get(funnel_url, headers=headers)
            assert response.status_code == 200, response.json

        def live_figures():
            with app.app_context():
                funnel_figures(site_id, campaign_id, 12)
                db.session.remove()

        report("funnel figures computed live (every query)", timed(live_figures, args.live_runs))
        timed(get_funnel, 1)  # the first call computes the snapshot and waits for it
        report("GET funnel?campaign_id (snapshot fresh)", timed(get_funnel, args.runs))
        # A snapshot older than the TTL is recomputed in the background while calls answer
        # from it: time calls that overlap those recomputations (they share the 2 cores).
        app.config["FUNNEL_FIGURES_TTL_S"] = 0.5
        refreshing = timed(lambda: (get_funnel(), time.sleep(0.05)), args.runs)
        app.extensions["funnel_figure_snapshots"].wait()
        app.config["FUNNEL_FIGURES_TTL_S"] = 30.0
        report("GET funnel?campaign_id (refresh in background)", [ms - 50 for ms in refreshing])
        body = client.get(funnel_url, headers=headers).json
        print(
            f"  repeat-customer rate {body['totals']['repeat_customer_rate']} %, customers "
            f"{body['totals']['customers']:,}, AOV {body['totals']['average_order_value']}"
        )

        def export():
            response = client.get(
                f"/api/v1/admin/sites/{site_id}/segments.csv", headers=headers, buffered=False
            )
            lines = sum(chunk.count(b"\n") for chunk in response.response)
            response.close()
            assert lines == args.visitors + 1, lines

        report("GET segments.csv (streamed to the end)", timed(export, 1))
        tracemalloc.start()  # slows Python several times over: a second run, for memory only
        export()
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        print(f"  peak Python memory during the export (tracemalloc): {peak / 1e6:.1f} MB")

        with app.app_context():
            survey = db.session.get(Campaign, campaign_id)
            keys = [f"bench-{i:09d}" for i in range(1, 401, 2)]
            # The measured visitors answer once more: the emotional and action steps.
            db.session.execute(
                text(
                    "UPDATE responses SET answers = answers || CAST(:answers AS jsonb)"
                    " WHERE campaign_id = :c AND visitor_id IN"
                    " (SELECT id FROM visitors WHERE visitor_key = ANY(:keys))"
                ),
                {
                    "c": survey.id,
                    "answers": '{"emotional": {"value": 5, "at": "2026-01-02T00:00:00"},'
                    ' "action": {"value": "yes", "at": "2026-01-02T00:00:00"}}',
                    "keys": keys,
                },
            )
            db.session.commit()
            # Loaded after the commit, as a request has them (not expired: no reload per call).
            visitors = db.session.scalars(
                select(Visitor).where(Visitor.visitor_key.in_(keys))
            ).all()
            # Wall time on a shared machine includes waiting for a CPU; the CPU time this
            # process and its PostgreSQL backend spend (from /proc) is what the work costs.
            backend = db.session.scalar(text("SELECT pg_backend_pid()"))
            answer, order = Restaging("answer"), Restaging("order")
            statements = []
            count = lambda *_: statements.append(1)  # noqa: E731
            event.listen(db.engine, "before_cursor_execute", count)
            for visitor in visitors:
                with answer.measure(statements, backend):
                    funnel.on_answers([visitor])
                    db.session.flush()
                with order.measure(statements, backend):
                    funnel.on_order(visitor)
                    db.session.flush()
            event.remove(db.engine, "before_cursor_execute", count)
            db.session.rollback()
            for restaging in (answer, order):
                restaging.report()
            ping_ms = timed(lambda: db.session.execute(text("SELECT 1")), 200)
            report("one round trip (SELECT 1), for scale", ping_ms)
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
        if args.keep:
            print(f"kept database {url}")
        else:
            drop_database(admin_url, url)


if __name__ == "__main__":
    main()
