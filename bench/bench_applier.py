"""The event applier alone on PostgreSQL: events folded per second from a stored backlog.

Seeds a throw-away database with one site, 10 running two-variant surveys and, for each backlog,
``--visitors`` visitors of its own (default: one per 20 events) each assigned to two of them (5%
in the holdout), all in set-based statements (``INSERT ... SELECT generate_series``). It then
stores ``--events`` pending events as the events endpoint leaves them (visitor key as sent, the
browser's variant claim, ``pending`` set) in batches of 5 per visitor, as a snippet sends them,
the batches of one visitor scattered over the backlog: impressions 30%, answers 40% (a choice and
a scale, both scored by the funnel), completions 15%, closes 15%. Then it times
:func:`~widget_server.services.ingest.applier.apply_pending` chunks until none is pending, in one
process, then (``--parallel 2``, the default) on a second backlog of the same size in two
processes at once. Target: 5,000 events/s or more.

Each row shows the wall time and the CPU seconds the applier process(es) and their PostgreSQL
backends spent, and the machine's 1-minute load: on a shared machine the wall time moves with the
other work, the CPU much less. ``ms/chunk`` is per applier.

After each phase it checks that every event was applied exactly once: none pending, each with
its visitor set, the assignments' impressions equal to the impression events counted under a
variant, one response per answering visitor and campaign. It exits 1 when a check fails.

The database (``fc_bench_applier_<pid>``) is created on the server that
``FUNNELCAKE_BENCH_POSTGRES_URL`` names (default ``postgresql://postgres@127.0.0.1:5432/postgres``,
used only to create and drop it) and dropped at the end, also after a failure, unless ``--keep``.

    python bench/bench_applier.py                        # 1,000,000 events, 1 then 2 appliers
    python bench/bench_applier.py --events 100000 --parallel 0
    python bench/bench_applier.py --events 100000 --profile applier.prof
"""

import argparse
import multiprocessing
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flask_migrate import upgrade  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402
from throwaway_postgres import drop_database, fresh_database  # noqa: E402 (bench/ is the folder)

from widget_server import create_app  # noqa: E402
from widget_server.extensions import db  # noqa: E402
from widget_server.services.ingest import applier  # noqa: E402

CAMPAIGNS = 10
#: Events a snippet sends together; a batch names one visitor and one campaign.
BATCH = 5
#: Per process, so two runs on one server do not drop each other's database.
BENCH_DB = f"fc_bench_applier_{os.getpid()}"
SURVEY = {
    "steps": [
        {
            "id": "q1",
            "type": "single_choice",
            "question": "How did you find us?",
            "options": [
                {"id": "search", "label": "Search", "dimension": "emotional", "score": 3},
                {"id": "friend", "label": "A friend", "dimension": "emotional", "score": 8},
            ],
        },
        {
            "id": "q2",
            "type": "scale",
            "question": "How likely are you to buy?",
            "dimension": "intentional",
        },
    ],
    "thank_you": {"title": "Thanks!"},
}


def bench_app(url: str):
    return create_app(
        {
            "DATABASE_URL": url,
            "SECRET_KEY": "bench",
            "RATELIMIT_ENABLED": False,
            "EVALUATE_INTERVAL_S": 0,
            "DB_CONNECT_TIMEOUT_S": 10,
        }
    )


def seed_catalog(app, visitors: int) -> int:
    """Migrate; one site with 10 running surveys (through the admin services, so the content is
    real), then the visitors and their assignments in bulk. Returns the site's id."""
    from widget_server.schemas.content import load_content
    from widget_server.services.campaigns import catalog

    with app.app_context():
        upgrade(directory=app.extensions["migrate"].directory)
        site = catalog.create_site({"name": "Bench", "allowed_origins": ["https://shop.example"]})
        for i in range(CAMPAIGNS):
            campaign = catalog.create_campaign(
                site,
                {
                    "name": f"Survey {i}",
                    "kind": "survey",
                    "priority": i,
                    "targeting": {},
                    "trigger": {"type": "immediate"},
                    "frequency": {},
                    "ab": {},
                    "variants": [
                        {
                            "name": name,
                            "is_control": name == "A",
                            "weight": 1,
                            "content": load_content("survey", SURVEY),
                        }
                        for name in ("A", "B")
                    ],
                },
            )
            catalog.change_status(campaign, "start")
        site_id = site.id
        conn = db.session.connection()
        conn.execute(
            text(
                """
                INSERT INTO visitors (site_id, visitor_key, attributes, scores, order_count,
                    total_spent, email_consent, first_seen_at, last_seen_at)
                SELECT :site, 'visitor-' || v, '{}', '{}', 0, 0, false, now(), now()
                FROM generate_series(1, :n) AS v
                """
            ),
            {"site": site_id, "n": visitors},
        )
        # Visitor v is assigned to the campaigns at places v % 10 and (v + 3) % 10 of the site,
        # on variant (v / 10) % 2; one in 20 is in the holdout (no variant).
        conn.execute(
            text(
                """
                WITH campaign AS (
                    SELECT id, row_number() OVER (ORDER BY id) - 1 AS place
                    FROM campaigns WHERE site_id = :site
                ), variant AS (
                    SELECT campaign_id, id, row_number() OVER (
                        PARTITION BY campaign_id ORDER BY id) - 1 AS place
                    FROM variants
                )
                INSERT INTO assignments (campaign_id, visitor_id, variant_id, holdout,
                    sampled_out, reward_only, impressions, assigned_at)
                SELECT c.id, v.id, CASE WHEN v.id % 20 = 7 THEN NULL ELSE va.id END,
                    v.id % 20 = 7, false, false, 0, now()
                FROM visitors AS v
                CROSS JOIN (VALUES (0), (3)) AS offset_by(k)
                JOIN campaign AS c ON c.place = (v.id + offset_by.k) % :campaigns
                JOIN variant AS va ON va.campaign_id = c.id AND va.place = (v.id / 10) % 2
                WHERE v.site_id = :site
                """
            ),
            {"site": site_id, "campaigns": CAMPAIGNS},
        )
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
    return site_id


def store_pending(
    engine, site_id: int, first_visitor: int, visitors: int, start: int, events: int
) -> None:
    """Events ``start+1 .. start+events`` as the endpoint stores them (pending, visitor key).

    Event i is place ``i % 5`` of batch ``i / 5``; a batch names visitor
    ``first_visitor + (batch * 7919) % visitors + 1`` (so a chunk of the queue meets many
    visitors, each a few times) and one of that visitor's two campaigns, claiming the variant
    decide showed. Places:
    0 impression, 1 answer q1, 2 answer q2, 3 completion (or a second impression every third
    batch), 4 close or completion. Times follow the ids, a millisecond apart.
    """
    with engine.begin() as conn:
        conn.execute(
            text(
                """
                WITH campaign AS (
                    SELECT id, row_number() OVER (ORDER BY id) - 1 AS place
                    FROM campaigns WHERE site_id = :site
                ), variant AS (
                    SELECT campaign_id, id, row_number() OVER (
                        PARTITION BY campaign_id ORDER BY id) - 1 AS place
                    FROM variants
                ), sent AS (
                    SELECT i, i % 5 AS place, i / 5 AS batch,
                        :first_visitor + ((i / 5) * 7919::bigint) % :visitors + 1 AS visitor
                    FROM generate_series(:start + 1, :end) AS i
                )
                INSERT INTO events (site_id, event_uuid, type, visitor_key, campaign_id,
                    variant_id, pending, occurred_at, received_at, data)
                SELECT :site, 'bench-' || s.i,
                    CASE s.place
                        WHEN 0 THEN 'impression'
                        WHEN 1 THEN 'answer'
                        WHEN 2 THEN 'answer'
                        WHEN 3 THEN CASE WHEN s.batch % 3 = 0 THEN 'impression' ELSE 'complete' END
                        ELSE CASE WHEN s.batch % 3 = 1 THEN 'complete' ELSE 'close' END
                    END,
                    'visitor-' || s.visitor, c.id, va.id, true,
                    now() - (:end - s.i) * interval '1 millisecond',
                    now() - (:end - s.i) * interval '1 millisecond',
                    CASE s.place
                        WHEN 1 THEN jsonb_build_object('step_id', 'q1', 'value',
                            CASE WHEN s.batch % 2 = 0 THEN 'search' ELSE 'friend' END)
                        WHEN 2 THEN jsonb_build_object('step_id', 'q2', 'value', s.batch % 11)
                        ELSE '{}'::jsonb
                    END
                FROM sent AS s
                JOIN campaign AS c
                    ON c.place = (s.visitor + CASE WHEN s.batch % 2 = 0 THEN 0 ELSE 3 END)
                        % :campaigns
                JOIN variant AS va ON va.campaign_id = c.id AND va.place = (s.visitor / 10) % 2
                """
            ),
            {
                "site": site_id,
                "first_visitor": first_visitor,
                "visitors": visitors,
                "campaigns": CAMPAIGNS,
                "start": start,
                "end": start + events,
            },
        )
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))


def drain(url: str, chunk: int, profile_path: str | None = None) -> dict:
    """Apply chunks until none is pending; this process's events, chunks, seconds, and the CPU
    seconds it and its PostgreSQL backend spent (the machine may be shared: the CPU shows what
    the work itself cost)."""
    app = bench_app(url)
    applied = chunks = 0
    profiler = None
    if profile_path:
        import cProfile

        profiler = cProfile.Profile()
    with app.app_context():
        backend = db.session.connection().exec_driver_sql("SELECT pg_backend_pid()").scalar()
        db.session.commit()
        backend_cpu, own_cpu = process_cpu_s(backend), time.process_time()
        started, started_at = time.perf_counter(), time.time()
        if profiler:
            profiler.enable()
        cursor = applier.ClaimCursor()  # as `funnelcake worker` claims
        while done := applier.apply_pending(chunk, cursor):
            applied += done
            chunks += 1
        if profiler:
            profiler.disable()
            profiler.dump_stats(profile_path)
        elapsed = time.perf_counter() - started
        own_cpu = time.process_time() - own_cpu
        same = db.session.connection().exec_driver_sql("SELECT pg_backend_pid()").scalar()
        backend_cpu = process_cpu_s(backend) - backend_cpu if same == backend else float("nan")
        db.session.remove()
        db.engine.dispose()
    return {
        "events": applied,
        "chunks": chunks,
        "seconds": elapsed,
        "cpu_s": own_cpu,
        "postgres_cpu_s": backend_cpu,
        "started_at": started_at,
        "ended_at": started_at + elapsed,
    }


def process_cpu_s(pid: int) -> float:
    """User and system CPU seconds of a process of this machine (NaN when it is elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_phase(url: str, appliers: int, chunk: int, profile_path: str | None) -> dict:
    """Drain the backlog with ``appliers`` processes: their summed figures, and the seconds from
    the first one's start to the last one's end (starting the processes not counted)."""
    if appliers == 1:
        return drain(url, chunk, profile_path)
    with multiprocessing.get_context("spawn").Pool(appliers) as pool:
        results = pool.starmap(drain, [(url, chunk)] * appliers)
    summed = {key: sum(r[key] for r in results) for key in ("events", "chunks", "cpu_s")}
    summed["postgres_cpu_s"] = sum(r["postgres_cpu_s"] for r in results)
    first = min(r["started_at"] for r in results)
    return {**summed, "seconds": max(r["ended_at"] for r in results) - first}


def check(engine) -> list[str]:
    """Every stored event applied exactly once; returns what failed."""
    with engine.connect() as conn:
        pending, unresolved = conn.execute(
            text(
                "SELECT count(*) FILTER (WHERE pending), count(*) FILTER (WHERE visitor_id IS NULL)"
                " FROM events"
            )
        ).one()
        impressions = conn.execute(text("SELECT coalesce(sum(impressions), 0) FROM assignments"))
        impressions = impressions.scalar()
        counted = conn.execute(
            text("SELECT count(*) FROM events WHERE type = 'impression' AND variant_id IS NOT NULL")
        ).scalar()
        responses, answering = conn.execute(
            text(
                "SELECT (SELECT count(*) FROM responses), (SELECT count(*) FROM (SELECT DISTINCT"
                " campaign_id, visitor_id FROM events WHERE type IN ('answer', 'complete')"
                " AND variant_id IS NOT NULL) AS pairs)"
            )
        ).one()
    failures = []
    if pending:
        failures.append(f"{pending:,} events still pending")
    if unresolved:
        failures.append(f"{unresolved:,} events without their visitor")
    if impressions != counted:
        failures.append(f"assignments hold {impressions:,} impressions, events {counted:,}")
    if responses != answering:
        failures.append(f"{responses:,} responses for {answering:,} answering visitors")
    return failures


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--events", type=int, default=1_000_000, help="per phase")
    parser.add_argument("--visitors", type=int, help="default: events / 20")
    parser.add_argument(
        "--chunk", type=int, default=2000, help="events per chunk (the worker's on PostgreSQL)"
    )
    parser.add_argument(
        "--parallel", type=int, default=2, help="appliers of the second phase (0: skip it)"
    )
    parser.add_argument("--profile", help="write the single applier's cProfile stats here")
    parser.add_argument(
        "--keep", action="store_true", help=f"keep the database {BENCH_DB} afterwards"
    )
    args = parser.parse_args()
    visitors = args.visitors or max(args.events // 20, 100)

    url = fresh_database(BENCH_DB)
    try:
        failures = run(url, args, visitors)
    finally:
        if args.keep:
            print(f"kept database {BENCH_DB}")
        else:
            drop_database(BENCH_DB)
    for failure in failures:
        print("FAILED:", failure)
    sys.exit(1 if failures else 0)


def run(url: str, args, visitors: int) -> list[str]:
    phases = [1] + ([args.parallel] if args.parallel > 1 else [])
    started = time.perf_counter()
    # Visitors of their own for each phase: the second backlog is not the first one's visitors
    # coming back (their responses and stages made already), so the phases do the same work.
    site_id = seed_catalog(bench_app(url), visitors * len(phases))
    engine = create_engine(url)
    with engine.connect() as conn:
        version = conn.execute(text("SHOW server_version")).scalar()
    print(
        f"{CAMPAIGNS} running surveys x 2 variants, {visitors:,} visitors per backlog with 2"
        " assignments each"
        f" (seeded in {time.perf_counter() - started:.0f} s), PostgreSQL {version},"
        f" {os.cpu_count()} CPUs, chunks of {args.chunk:,}"
    )
    header = ("appliers", "events", "store s", "chunks", "apply s", "events/s", "ms/chunk",
              "cpu s", "pg cpu s", "load 1m")  # fmt: skip
    print(" ".join(f"{name:>9}" for name in header))
    failures = []
    stored = 0
    for phase, appliers in enumerate(phases):
        started = time.perf_counter()
        store_pending(engine, site_id, phase * visitors, visitors, stored, args.events)
        store_s = time.perf_counter() - started
        stored += args.events
        profile = args.profile if appliers == 1 else None
        r = run_phase(url, appliers, args.chunk, profile)
        figures = (
            f"{appliers}",
            f"{r['events']:,}",
            f"{store_s:.1f}",
            f"{r['chunks']:,}",
            f"{r['seconds']:.1f}",
            f"{r['events'] / r['seconds']:,.0f}",
            f"{1000 * r['seconds'] * appliers / max(r['chunks'], 1):.1f}",
            f"{r['cpu_s']:.1f}",
            f"{r['postgres_cpu_s']:.1f}",
            f"{os.getloadavg()[0]:.1f}",
        )
        print(" ".join(f"{figure:>9}" for figure in figures), flush=True)
        if r["events"] != args.events:
            failures.append(f"{appliers} applier(s) applied {r['events']:,} of {args.events:,}")
        failures += check(engine)
    engine.dispose()
    if args.profile:
        print(f"profile of the single applier: {args.profile} (python -m pstats)")
    return failures


if __name__ == "__main__":
    main()
