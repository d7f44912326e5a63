"""Requests per second of decide, events and spin under gunicorn, next to the bare /healthz ceiling.

Run: ``python bench/bench_public_api.py [--database-url URL] [--seconds 30] [--connections 32]``

It creates a fresh database (a temporary SQLite file unless ``--database-url`` names an empty
PostgreSQL database, e.g. one made by ``createdb fc_bench``), seeds it, starts gunicorn on
127.0.0.1 and, as production runs them, one ``funnelcake worker`` beside it (the web workers only
store events; the worker applies them), drives each endpoint with wrk (Lua scripts in bench/wrk/,
2 s warm-up then the timed run) and prints a table. wrk: ``apt-get install wrk``.

- ``healthz``: ``jsonify(status="ok")`` of the same app and gunicorn, the ceiling.
- ``decide``: site ``pk_bench`` with 5 running surveys; half the calls from 5,000 returning
  visitors, half from new ones.
- ``events``: batches of 10 fresh events (an impression, steps, answers, a completion) from
  ``--event-visitors`` seeded visitors holding an assignment to the first survey, as a decide
  leaves it. Reported as events/s (10 x batches/s) and as a ratio to ``healthz``'s req/s of the
  same run; then, the load stopped, the seconds until ``/readyz`` reports no pending event (the
  worker's drain time; target 5 s or less). Checked, once drained: every event the server
  acknowledged (``accepted`` of its 202 answers) is stored, none is pending, each has its visitor,
  the assignments' impressions equal the impression events of assigned visitors (each applied
  once) and there is one response per visitor who answered.
- ``spin``: site ``pk_bench_wheel`` with one running wheel (90% of its weight on a slice backed by a
  generated pool of ``--coupons`` codes, 10% "no prize"); each request is the first spin of a
  distinct visitor who holds the assignment a decide leaves (``--spin-visitors`` seeded). Checked:
  every acknowledged spin is stored and no code was handed out twice.

It exits 1 when a check fails.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cpu_usage import cpu_seconds  # noqa: E402 (bench/ is the script's folder)
from gunicorn_server import start_gunicorn, start_worker  # noqa: E402

SITE_KEY = "pk_bench"
WHEEL_SITE_KEY = "pk_bench_wheel"
ORIGIN = "https://shop.example"
THREADS = 2
WARM_UP_S = 2
#: wrk's wait for an answer: slower ones count in the latencies instead of as socket errors.
TIMEOUT_S = 10
#: The longest the benchmark waits for the worker to apply the events' backlog.
DRAIN_TIMEOUT_S = 300
ENDPOINTS = ("decide", "events", "spin")
_CHUNK = 5000


def bench_app(database_url: str):
    from widget_server import create_app

    return create_app({"DATABASE_URL": database_url, "RATELIMIT_ENABLED": False})


def seed(database_url: str, event_visitors: int, spin_visitors: int, coupons: int) -> dict:
    """Migrate, create both benchmark sites; return what the wrk scripts need (as env vars)."""
    from flask_migrate import upgrade

    from widget_server.extensions import db

    app = bench_app(database_url)
    with app.app_context():
        upgrade(directory=app.extensions["migrate"].directory)
        env = {**seed_surveys(event_visitors), **seed_wheel(spin_visitors, coupons)}
        db.session.commit()
        analyze_tables(db)
        db.session.remove()
        db.engine.dispose()
    return env


def analyze_tables(db) -> None:
    """Gather PostgreSQL's planner statistics on the seeded tables, as autovacuum does for a
    running installation. Without them the planner takes the freshly loaded tables for nearly
    empty and reads, say, a chunk's visitors through the site's stage index (every visitor of
    the site, filtered) instead of the unique key: a plan no installation that has been up for a
    minute runs. SQLite keeps no statistics unless asked, in production too: left as it is."""
    from sqlalchemy import text

    if db.engine.dialect.name == "postgresql":
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("ANALYZE"))


def seed_surveys(event_visitors: int) -> dict:
    """Site ``pk_bench`` with 5 running two-variant surveys (decide and events), and the
    visitors who send the events, assigned to the first survey's first variant."""
    from widget_server.schemas.content import load_content
    from widget_server.services.campaigns import catalog

    site = catalog.create_site({"name": "Bench", "allowed_origins": [ORIGIN]})
    site.site_key = SITE_KEY
    steps = [
        {
            "id": "q1",
            "type": "single_choice",
            "question": "?",
            "options": [{"id": "a", "label": "A"}, {"id": "b", "label": "B"}],
        }
    ]
    campaigns = []
    for i in range(5):
        campaign = catalog.create_campaign(
            site,
            {
                "name": f"c{i}",
                "kind": "survey",
                "priority": i,
                "targeting": {"url_exclude": ["/checkout*"]},
                "trigger": {"type": "delay", "seconds": 2},
                "frequency": {},
                "ab": {},
                "variants": [
                    {
                        "name": "A",
                        "is_control": True,
                        "weight": 1,
                        "content": load_content("survey", {"steps": steps}),
                    },
                    {"name": "B", "weight": 1, "content": load_content("survey", {"steps": steps})},
                ],
            },
        )
        catalog.change_status(campaign, "start")
        campaigns.append(campaign)
    campaign_id, variant_id = campaigns[0].id, campaigns[0].variants[0].id
    seed_assigned_visitors(site.id, "event", event_visitors, campaign_id, variant_id, 0)
    return {
        "SITE_KEY": SITE_KEY,
        "CAMPAIGN_ID": str(campaign_id),
        "VARIANT_ID": str(variant_id),
        "EVENT_VISITORS": str(event_visitors),
        "THREADS": str(THREADS),
    }


def seed_wheel(spin_visitors: int, coupons: int) -> dict:
    """Site ``pk_bench_wheel``: a running wheel on a generated pool, and the visitors to spin it.

    The wheel has a site of its own so that decide's site keeps exactly 5 running campaigns. The
    visitors and their assignments are what decide leaves behind, inserted in bulk.
    """
    from widget_server.schemas.content import load_content
    from widget_server.services.campaigns import catalog
    from widget_server.services.rewards import coupons as coupon_service

    site = catalog.create_site({"name": "Bench wheel", "allowed_origins": [ORIGIN]})
    site.site_key = WHEEL_SITE_KEY
    pool = coupon_service.create_pool(site, "Bench 10%")
    for start in range(0, coupons, coupon_service.MAX_GENERATE):
        count = min(coupon_service.MAX_GENERATE, coupons - start)
        coupon_service.generate_codes(pool, count, prefix="BENCH-")
    wheel = catalog.create_campaign(
        site,
        {
            "name": "Wheel",
            "kind": "wheel",
            "targeting": {},
            "trigger": {"type": "immediate"},
            "frequency": {},
            "ab": {},
            "variants": [
                {
                    "name": "A",
                    "is_control": True,
                    "weight": 1,
                    "content": load_content(
                        "wheel",
                        {
                            "title": "Spin to win",
                            "slices": [
                                {
                                    "label": "10% off",
                                    "color": "#e76f51",
                                    "weight": 90,
                                    "reward": {"type": "pool", "pool_id": pool.id},
                                },
                                {
                                    "label": "No prize",
                                    "color": "#264653",
                                    "weight": 10,
                                    "reward": {"type": "none"},
                                },
                            ],
                        },
                    ),
                }
            ],
        },
    )
    catalog.change_status(wheel, "start")
    wheel_id = wheel.id
    seed_assigned_visitors(site.id, "spin", spin_visitors, wheel_id, wheel.variants[0].id, 1)
    return {
        "WHEEL_SITE_KEY": WHEEL_SITE_KEY,
        "WHEEL_CAMPAIGN_ID": str(wheel_id),
        "SPIN_VISITORS": str(spin_visitors),
        "THREADS": str(THREADS),
    }


def seed_assigned_visitors(
    site_id: int, prefix: str, count: int, campaign_id: int, variant_id: int, impressions: int
) -> None:
    """Visitors ``<prefix>-0000000 ..`` and the assignment a decide leaves them, in bulk."""
    from sqlalchemy import insert, select

    from widget_server.extensions import db
    from widget_server.models import Assignment, Visitor
    from widget_server.models.types import utcnow

    now = utcnow()
    for start in range(0, count, _CHUNK):
        keys = [f"{prefix}-{n:07d}" for n in range(start, min(count, start + _CHUNK))]
        db.session.execute(
            insert(Visitor),
            [
                {
                    "site_id": site_id,
                    "visitor_key": key,
                    "attributes": {},
                    "scores": {},
                    "first_seen_at": now,
                    "last_seen_at": now,
                }
                for key in keys
            ],
        )
        ids = db.session.scalars(
            select(Visitor.id).where(Visitor.site_id == site_id, Visitor.visitor_key.in_(keys))
        )
        db.session.execute(
            insert(Assignment),
            [
                {
                    "campaign_id": campaign_id,
                    "visitor_id": i,
                    "variant_id": variant_id,
                    "impressions": impressions,
                }
                for i in ids
            ],
        )
        db.session.commit()


def stored_counts(database_url: str, survey_id: int, wheel_campaign_id: int) -> dict:
    """Rows the checks compare with what the server acknowledged."""
    from sqlalchemy import and_, distinct, func, select

    from widget_server.extensions import db
    from widget_server.models import Assignment, CouponCode, Event, Response, Spin

    app = bench_app(database_url)
    with app.app_context():
        of_wheel = Spin.campaign_id == wheel_campaign_id
        # Events of the survey from visitors it is shown to: the ones the applier must count.
        assigned = (
            select(Event.type, Event.visitor_id)
            .join(
                Assignment,
                and_(
                    Assignment.campaign_id == Event.campaign_id,
                    Assignment.visitor_id == Event.visitor_id,
                ),
            )
            .where(
                Event.campaign_id == survey_id,
                Assignment.variant_id.is_not(None),
                Assignment.sampled_out.is_(False),
            )
            .subquery()
        )
        counts = {
            "events": db.session.scalar(select(func.count()).select_from(Event)),
            "pending_events": db.session.scalar(select(func.count()).where(Event.pending)),
            "events_without_visitor": db.session.scalar(
                select(func.count()).where(Event.visitor_id.is_(None))
            ),
            "impression_events": db.session.scalar(
                select(func.count()).where(assigned.c.type == "impression")
            ),
            "impressions_applied": db.session.scalar(
                select(func.coalesce(func.sum(Assignment.impressions), 0)).where(
                    Assignment.campaign_id == survey_id
                )
            ),
            "answering_visitors": db.session.scalar(
                select(func.count(distinct(assigned.c.visitor_id))).where(
                    assigned.c.type.in_(("answer", "complete"))
                )
            ),
            "responses": db.session.scalar(
                select(func.count()).where(Response.campaign_id == survey_id)
            ),
            "spins": db.session.scalar(select(func.count()).where(of_wheel)),
            "spin_codes": db.session.scalar(select(func.count(Spin.code)).where(of_wheel)),
            "distinct_spin_codes": db.session.scalar(
                select(func.count(distinct(Spin.code))).where(of_wheel)
            ),
            "distinct_spin_coupons": db.session.scalar(
                select(func.count(distinct(Spin.coupon_id))).where(of_wheel)
            ),
            "assigned_coupons": db.session.scalar(
                select(func.count()).where(CouponCode.status == "assigned")
            ),
            "coupons_given_to_two": db.session.scalar(
                select(func.count()).select_from(
                    select(Spin.coupon_id)
                    .where(Spin.coupon_id.is_not(None))
                    .group_by(Spin.coupon_id)
                    .having(func.count() > 1)
                    .subquery()
                )
            ),
        }
        db.session.remove()
        db.engine.dispose()
    return counts


def drain_s(base_url: str) -> tuple[float, int]:
    """Poll ``/readyz`` from now until it reports no pending event: the seconds that took, and
    the backlog it reported first (what the load left behind)."""
    started = time.perf_counter()
    backlog_left = None
    while time.perf_counter() - started < DRAIN_TIMEOUT_S:
        with urllib.request.urlopen(f"{base_url}/readyz", timeout=10) as answer:
            pending = json.load(answer)["events"]["pending_events"]
        if backlog_left is None:
            backlog_left = pending
        if pending == 0:
            return time.perf_counter() - started, backlog_left
        time.sleep(0.25)  # a probe counts the backlog: asked often, it slows the drain it times
    return float("inf"), backlog_left


def run_wrk(script: str, url: str, seconds: int, connections: int, env: dict) -> dict:
    """One wrk run: requests per second, p99, non-2xx, and the ``name-stats k=v`` the script
    prints in ``done()``."""
    finished = subprocess.run(
        [
            "wrk",
            f"-t{THREADS}",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            f"--timeout={TIMEOUT_S}s",
            "-s",
            str(ROOT / "bench" / "wrk" / script),
            url,
        ],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
    )
    if finished.returncode:
        sys.exit(f"wrk failed on {script}: {finished.stderr or finished.stdout}")
    out = finished.stdout
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    stats = {
        k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", " ".join(re.findall(r"-stats (.*)", out)))
    }
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "requests": int(re.search(r"(\d+) requests in", out).group(1)),
        "non2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": errors.group(1).strip() if errors else "",
        "p99_ms": float(p99.group(1)) * scale[p99.group(2)] if p99 else float("nan"),
        "stats": stats,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="an empty PostgreSQL database (default: SQLite)")
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--port", type=int, default=5077)
    parser.add_argument("--event-visitors", type=int, default=20_000)
    parser.add_argument("--spin-visitors", type=int, default=50_000)
    parser.add_argument("--coupons", type=int, default=50_000)
    parser.add_argument(
        "--endpoints",
        default="decide,events,spin",
        help="which to drive, comma-separated (healthz always runs first: it is the ceiling)",
    )
    args = parser.parse_args()
    endpoints = ["healthz"] + [n for n in ENDPOINTS if n in args.endpoints.split(",")]
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install wrk (or build it from github.com/wg/wrk)")

    load_before = os.getloadavg()[0]  # the machine may be shared: other work moves the figures
    tmp = tempfile.mkdtemp(prefix="fc-bench-")
    database_url = args.database_url or f"sqlite:///{tmp}/bench.db"
    started = time.perf_counter()
    env = seed(database_url, args.event_visitors, args.spin_visitors, args.coupons)
    print(
        f"seeded in {time.perf_counter() - started:.0f} s: 5 surveys, "
        f"{args.event_visitors:,} visitors to send events, a wheel, {args.coupons:,} codes, "
        f"{args.spin_visitors:,} visitors to spin",
        flush=True,
    )
    survey_id, wheel_id = int(env["CAMPAIGN_ID"]), int(env["WHEEL_CAMPAIGN_ID"])
    server = start_gunicorn(database_url, tmp, args.port, args.workers)
    worker = start_worker(database_url, tmp, Path(tmp) / "worker.log")
    base = f"http://127.0.0.1:{args.port}"
    processes = {"web": server.pid, "worker": worker.pid}
    database_process = "postgres" if database_url.startswith("postgresql") else None
    results, acknowledged = {}, {"events": 0, "spins": 0, "repeats": 0, "won": 0}
    drained = None
    try:
        before = stored_counts(database_url, survey_id, wheel_id)
        spin_from = 0
        for name in endpoints:
            for seconds in (WARM_UP_S, args.seconds):
                cpu_before = cpu_seconds(processes, database_process)
                run = run_wrk(
                    f"{name}.lua",
                    base,
                    seconds,
                    args.connections,
                    {**env, "SPIN_FROM": str(spin_from)},
                )
                stats = run["stats"]
                acknowledged["events"] += stats.get("accepted", 0)
                acknowledged["spins"] += stats.get("ok", 0) - stats.get("repeated", 0)
                acknowledged["repeats"] += stats.get("repeated", 0)
                acknowledged["won"] += stats.get("won", 0)
                spin_from = stats.get("next", spin_from)
            cpu_after = cpu_seconds(processes, database_process)
            run["cpu_ms"] = {
                part: 1000 * (cpu_after[part] - cpu_before[part]) / max(run["requests"], 1)
                for part in cpu_after
            }
            results[name] = run
            if name == "events":
                drained = drain_s(base)
    finally:
        # SIGTERM: gunicorn's workers finish the requests in hand before exiting, and the worker
        # its chunk, so the counts below are final (requests wrk gave up on may still be stored;
        # none are lost). Anything stored after the drain is applied first.
        server.terminate()
        server.wait(timeout=60)
        if drained is not None:
            wait_until_applied(database_url)
        worker.terminate()
        worker.wait(timeout=60)
    after = stored_counts(database_url, survey_id, wheel_id)
    shutil.rmtree(tmp, ignore_errors=True)

    backend = database_url.split(":", 1)[0]
    print(
        f"\n{backend}, gunicorn -w {args.workers} and one funnelcake worker, wrk -t{THREADS} "
        f"-c{args.connections} -d{args.seconds}s; load {load_before:.1f} before, "
        f"{os.getloadavg()[0]:.1f} at the end"
    )
    parts = list(results["healthz"]["cpu_ms"])
    print(
        f"{'endpoint':<10}{'req/s':>10}{'p99 ms':>10}{'non-2xx':>9}{'% of bare':>11}"
        f"   CPU ms per request: {', '.join(parts)}"
    )
    ceiling = results["healthz"]["rps"]
    for name, r in results.items():
        print(
            f"{name:<10}{r['rps']:>10.0f}{r['p99_ms']:>10.1f}{r['non2xx']:>9}"
            f"{100 * r['rps'] / ceiling:>10.0f}%   "
            + ", ".join(f"{r['cpu_ms'][part]:.2f}" for part in parts)
            + (f"   socket errors: {r['socket_errors']}" if r["socket_errors"] else "")
        )
    if "events" in results:
        report_events(results["events"]["rps"], ceiling, drained)
    failures = check(before, after, acknowledged, args.spin_visitors)
    for failure in failures:
        print("FAILED:", failure)
    sys.exit(1 if failures else 0)


def report_events(batches_per_s: float, ceiling: float, drained: tuple[float, int]) -> None:
    events_per_s = 10 * batches_per_s
    drain, backlog_left = drained
    print(
        f"events/s: {events_per_s:.0f} (10 x {batches_per_s:.0f} batches/s) = "
        f"{events_per_s / ceiling:.2f} x healthz's {ceiling:.0f} req/s (goal 1.5, floor 1.0); "
        f"backlog when the load stopped {backlog_left:,} events, drained in {drain:.1f} s "
        "(goal 5 s)"
    )


def wait_until_applied(database_url: str) -> None:
    """Wait (up to ``DRAIN_TIMEOUT_S``) until the worker has applied every stored event."""
    deadline = time.perf_counter() + DRAIN_TIMEOUT_S
    while pending_events(database_url) and time.perf_counter() < deadline:
        time.sleep(0.2)


def pending_events(database_url: str) -> int:
    """Stored events not yet applied, read from outside the servers."""
    from sqlalchemy import create_engine, text

    from widget_server.extensions import normalise_database_url

    engine = create_engine(normalise_database_url(database_url))
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT count(*) FROM events WHERE pending")).scalar()
    finally:
        engine.dispose()


def check(before: dict, after: dict, acknowledged: dict, spin_visitors: int) -> list[str]:
    """Print the comparisons of stored rows with acknowledged answers; return what failed."""
    events = after["events"] - before["events"]
    spins = after["spins"] - before["spins"]
    print(
        f"events: {acknowledged['events']:,} acknowledged, {events:,} stored "
        f"(more only from batches in flight when wrk stopped), {after['pending_events']:,} "
        f"pending; impressions: {after['impression_events']:,} stored, "
        f"{after['impressions_applied']:,} applied; {after['responses']:,} responses of "
        f"{after['answering_visitors']:,} answering visitors"
    )
    print(
        f"spins: {acknowledged['spins']:,} first spins acknowledged ({acknowledged['won']:,} "
        f"answers with a code), {spins:,} stored, {after['spin_codes']:,} codes handed out, "
        f"{after['distinct_spin_codes']:,} distinct; {after['assigned_coupons']:,} pool codes "
        f"assigned; {acknowledged['repeats']:,} repeated spins"
        + (
            f" (wrapped past the {spin_visitors:,} seeded visitors)"
            if acknowledged["repeats"]
            else ""
        )
    )
    failures = []
    if events < acknowledged["events"]:
        failures.append(f"{acknowledged['events'] - events} acknowledged events not stored")
    if after["pending_events"] or after["events_without_visitor"]:
        failures.append(
            f"{after['pending_events']} events not applied, "
            f"{after['events_without_visitor']} without their visitor"
        )
    if after["impressions_applied"] != after["impression_events"]:
        failures.append(
            f"{after['impressions_applied']:,} impressions applied for "
            f"{after['impression_events']:,} stored"
        )
    if after["responses"] != after["answering_visitors"]:
        failures.append("responses and answering visitors differ")
    if spins < acknowledged["spins"]:
        failures.append(f"{acknowledged['spins'] - spins} acknowledged spins not stored")
    if after["spin_codes"] != after["distinct_spin_codes"] or after["coupons_given_to_two"]:
        failures.append("a code was handed out twice")
    if after["assigned_coupons"] != after["distinct_spin_coupons"]:
        failures.append("assigned pool codes and spins holding one differ")
    return failures


if __name__ == "__main__":
    main()
