"""Funnelcake's own commands (``demo``, ``create-admin``, ``evaluate``...), without an app.

``cli.py`` puts them on the ``funnelcake`` program and ``create_app`` on ``flask``'s; they run in
the app context that either gives them.
"""

from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext
from flask_migrate import upgrade


@click.group()
def commands():
    """Funnelcake's commands."""


@commands.command("create-token")
@click.option("--name", default="admin", help="A label to recognise the token by.")
@with_appcontext
def create_token_command(name):
    """Create an admin API bearer token and print it (it is shown only once)."""
    from .services.platform.tokens import create_token

    click.echo(create_token(name))


@commands.command("create-admin")
@click.argument("username")
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from standard input (scripts)."
)
@with_appcontext
def create_admin_command(username, password_stdin):
    """Create a user for the admin page (/admin); asks for the password twice."""
    import sys

    from .errors import APIError
    from .services.platform.admin_users import create_admin

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        create_admin(username, password)
    except APIError as err:
        details = "; ".join(m for messages in err.fields.values() for m in messages)
        raise click.ClickException(f"{err.message} {details}".strip()) from None
    click.echo(f"Admin user {username!r} created. Log in at /admin/login.")


@commands.command("demo")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--no-serve", is_flag=True, help="Set up the database and demo data, then exit.")
@click.option(
    "--empty", is_flag=True, help="Start without the six weeks of made-up shoppers of a first run."
)
@with_appcontext
def demo_command(host, port, no_serve, empty):
    """Create the SQLite database and a demo store, then serve it with the API.

    On the first run (while the store has no visitors) it writes six weeks of made-up shoppers,
    so results, promotion and the funnel have figures to show; ``--empty`` leaves them out.
    """
    from .demo.history import seed_history
    from .demo.store import ensure_demo_site, ensure_demo_token
    from .services.platform.admin_users import ensure_demo_admin
    from .services.promotion.evaluation import background_interval_s
    from .worker import start_worker

    upgrade(directory=current_app.extensions["migrate"].directory)
    base = f"http://{host}:{port}"
    origins = [base] + ([f"http://localhost:{port}"] if host == "127.0.0.1" else [])
    site = ensure_demo_site(origins)
    history = None if empty else seed_history(site)
    token = ensure_demo_token(Path(current_app.instance_path))
    click.echo(f"Demo store:  {base}/demo/")
    click.echo(f"Snippet:     {base}/static/widget.js (site key {site.site_key})")
    click.echo(f"Admin API:   {base}/api/v1/admin/sites")
    click.echo(f"Database:    {current_app.config['SQLALCHEMY_DATABASE_URI']}")
    click.echo(f"Admin token: {token}")
    username, password = ensure_demo_admin(Path(current_app.instance_path))
    click.echo(f"Admin page:  {base}/admin/")
    click.echo(f"Admin login: {username} / {password}")
    if history is not None:
        click.echo(
            f"History:     {history.days // 7} weeks, {history.visitors:,} visitors:"
            f" {history.survey_views:,} saw the survey, {history.completed:,} completed it,"
            f" {history.spins:,} spins, {history.orders:,} orders"
        )
    elif empty:
        click.echo("History:     none (--empty)")
    else:
        click.echo("History:     none added: the store has visitors (it is written on a first run)")
    interval_s = background_interval_s(current_app)
    if interval_s:
        click.echo(f"Promotion:   a round every {interval_s:g} s promotes clear winners")
    else:
        click.echo(
            "Promotion:   off; set FUNNELCAKE_EVALUATE_INTERVAL_S or run `funnelcake evaluate`"
        )
    if not no_serve:
        # Not app.run(): Flask ignores it inside a CLI command, and the demo must serve.
        from werkzeug.serving import run_simple

        app = current_app._get_current_object()
        start_worker(app)  # applies events, runs promotion rounds, delivers webhooks
        run_simple(host, port, app, threaded=True)


@commands.command("worker")
@with_appcontext
def worker_command():
    """Run the background work until stopped: apply stored events, promotion rounds, webhooks.

    Run one beside the web servers, or several (on PostgreSQL appliers share the events between
    them; each round and each delivery still happens once). SIGTERM or Ctrl-C stops it after the
    work in hand.
    """
    import signal
    import threading

    from .worker import start_worker

    runner = start_worker(current_app._get_current_object())
    click.echo("Worker running: " + ", ".join(job.name for job in runner.jobs))
    stopping = threading.Event()
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, lambda *_: stopping.set())
    while not stopping.wait(1.0):
        pass
    runner.stop()
    click.echo("Worker stopped.")


@commands.command("apply-events")
@click.option(
    "--chunk", type=click.IntRange(1, 100_000), default=None, help="Events per transaction."
)
@with_appcontext
def apply_events_command(chunk):
    """Apply every stored event now and exit (what the worker does continuously)."""
    from .services.ingest.applier import CHUNK, apply_all

    click.echo(f"applied {apply_all(chunk or CHUNK)} events")


@commands.command("evaluate")
@click.option(
    "--every",
    type=float,
    default=0,
    help="Repeat a round every this many seconds (0: run one round and exit).",
)
@with_appcontext
def evaluate_command(every):
    """Run one round of automatic promotion over all running campaigns.

    Safe to run from several processes or hosts at once: one takes the database lock and
    decides, the others print that they skipped the round.
    """
    import json
    import time

    from .extensions import db
    from .services.promotion.evaluation import run_round

    while True:
        report = run_round()
        db.session.remove()
        click.echo(json.dumps(report.as_json()))
        if every <= 0:
            return
        time.sleep(every)


@commands.command("deliver-webhooks")
@click.option("--limit", default=100, show_default=True, help="Deliveries per round at most.")
@click.option(
    "--every",
    default=0.0,
    show_default=True,
    type=float,
    help="Seconds between rounds; 0 runs one round and exits.",
)
@with_appcontext
def deliver_webhooks_command(limit, every):
    """Post the signed webhooks that are due (retries wait their backoff); safe to run in several
    places."""
    import time

    from .services.platform.webhooks import deliver_pending

    while True:
        done = deliver_pending(limit=limit)
        click.echo(f"delivered {done.delivered}, retrying {done.retrying}, failed {done.failed}")
        if every <= 0:
            return
        time.sleep(every)


@commands.command("import-coupons")
@click.option("--site-id", required=True, type=int, help="The site the codes belong to.")
@click.option("--pool", "pool_name", required=True, help="Pool name; created when missing.")
@click.argument("csv_file", type=click.File("r", encoding="utf-8-sig"))
@with_appcontext
def import_coupons_command(site_id, pool_name, csv_file):
    """Import single-use coupon codes from a CSV file (a "code" column, or the first column).

    Codes already in one of the site's pools, or given twice in the file, are reported and not
    imported; the command exits with status 1 when any row was not imported.
    """
    from .errors import APIError
    from .services.campaigns import catalog
    from .services.rewards import coupons

    try:
        text = csv_file.read()
    except UnicodeDecodeError as err:
        raise click.ClickException(f"{csv_file.name} is not UTF-8 text: {err}") from None
    try:
        site = catalog.get_site(site_id)
        pool = coupons.find_pool(site.id, pool_name) or coupons.create_pool(site, pool_name)
        result = coupons.import_codes(pool, coupons.codes_from_csv(text))
    except APIError as err:
        raise click.ClickException(f"{err.message} {err.fields or ''}".strip()) from None
    stock = coupons.stock([pool.id])[pool.id]
    click.echo(f"imported {result.imported} codes into pool {pool.name!r} (id {pool.id})")
    if result.duplicates:
        shown = ", ".join(result.duplicates[:20])
        more = " ..." if len(result.duplicates) > 20 else ""
        click.echo(f"duplicates not imported ({len(result.duplicates)}): {shown}{more}")
    for line, reason in list(result.invalid.items())[:20]:
        click.echo(f"{line}: {reason}")
    click.echo(
        f"stock: {stock.available} available, {stock.assigned} assigned, {stock.redeemed} redeemed"
    )
    if result.duplicates or result.invalid:
        raise SystemExit(1)
