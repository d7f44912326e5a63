"""Funnelcake configuration: defaults that work unset, overridden by FUNNELCAKE_* variables.

Every setting of the ``Config`` class can be set from the environment by prefixing its name with
``FUNNELCAKE_`` (``FUNNELCAKE_DATABASE_URL``, ``FUNNELCAKE_SECRET_KEY`` ...). The README lists them.
"""

import os
import secrets
from pathlib import Path

INSTANCE_DIR = Path(os.environ.get("FUNNELCAKE_INSTANCE_DIR", Path.cwd() / "instance"))


def _env(name: str, default):
    """Read ``FUNNELCAKE_<name>`` and convert it to the type of ``default``."""
    raw = os.environ.get(f"FUNNELCAKE_{name}")
    if raw is None:
        return default
    if isinstance(default, bool):
        return raw.strip().lower() in {"1", "true", "yes", "on"}
    if isinstance(default, int):
        return int(raw)
    if isinstance(default, float):
        return float(raw)
    return raw


def _secret_key() -> str:
    """A secret key kept in the instance folder so sessions survive restarts without any setting."""
    path = INSTANCE_DIR / "secret_key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        INSTANCE_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        path.write_text(key)
        path.chmod(0o600)
        return key


class Config:
    #: SQLAlchemy URL; SQLite file in ./instance by default, PostgreSQL in production.
    DATABASE_URL = _env("DATABASE_URL", f"sqlite:///{INSTANCE_DIR / 'funnelcake.db'}")
    #: Signs admin sessions and CSRF tokens. Generated once and kept in ./instance when unset.
    SECRET_KEY = os.environ.get("FUNNELCAKE_SECRET_KEY") or None
    #: Redis for shared rate limits and caches across workers; in-process memory when unset.
    REDIS_URL = _env("REDIS_URL", "")
    #: Rate limits (flask-limiter syntax) per client IP on the public API.
    RATELIMIT_PUBLIC = _env("RATELIMIT_PUBLIC", "600 per minute")
    #: Spins are money: a tighter limit per IP, and per visitor id.
    RATELIMIT_SPIN = _env("RATELIMIT_SPIN", "30 per minute")
    RATELIMIT_ENABLED = _env("RATELIMIT_ENABLED", True)
    #: Seconds a site's running-campaign configuration is cached in each worker (0 disables).
    CONFIG_CACHE_TTL_S = _env("CONFIG_CACHE_TTL_S", 5.0)
    #: Seconds between two checks, by one request of a worker, that its copy of a site's
    #: configuration is still the stored version (one indexed read); a change reaches every
    #: worker within this.
    CONFIG_CHECK_S = _env("CONFIG_CHECK_S", 0.5)
    #: Seconds a worker keeps a visitor's state for decide (0: read the database every time).
    #: A change made in this process, or any change when ``REDIS_URL`` is set, reaches decide at
    #: once; with several processes and no Redis, other processes' events arrive within
    #: ``CONFIG_CHECK_S`` and their other changes (identify, orders) within this. See
    #: docs/decide.md.
    VISITOR_STATE_TTL_S = _env("VISITOR_STATE_TTL_S", 30.0)
    #: Visitors whose state each worker keeps at most (least recently used dropped first).
    VISITOR_STATE_MAX = _env("VISITOR_STATE_MAX", 100_000)
    #: Seconds after which the funnel figures a worker answers with are recomputed in the
    #: background (0: computed on every call; see docs/funnel.md).
    FUNNEL_FIGURES_TTL_S = _env("FUNNEL_FIGURES_TTL_S", 30.0)
    #: A visitor counts as "new" until this many minutes after their first decide.
    NEW_VISITOR_WINDOW_MIN = _env("NEW_VISITOR_WINDOW_MIN", 30)
    #: Seconds between the automatic promotion rounds the server runs (one round per interval
    #: for the whole installation, however many workers; 0 = off, e.g. when a cron job runs
    #: `funnelcake evaluate` instead). Off under TESTING.
    EVALUATE_INTERVAL_S = _env("EVALUATE_INTERVAL_S", 300.0)
    #: Apply each events batch in its own request instead of leaving it to the applier of
    #: ``funnelcake worker``: the embedded mode of the test suite, never a production setting
    #: (the request then does all the work the applier does in bulk).
    EVENTS_APPLY_INLINE = _env("EVENTS_APPLY_INLINE", False)
    #: Seconds the applier sleeps when it found less than a chunk to apply: it then takes what
    #: gathered meanwhile in one transaction (the lag this adds is visible on /readyz).
    APPLIER_IDLE_S = _env("APPLIER_IDLE_S", 0.2)
    #: Seconds between two rounds of webhook deliveries in ``funnelcake worker``.
    WEBHOOK_INTERVAL_S = _env("WEBHOOK_INTERVAL_S", 2.0)
    #: Minutes without a new answer after which an unfinished survey response counts as left:
    #: the worker then sends the site's ``response.partial`` webhook, once per response round.
    RESPONSE_PARTIAL_AFTER_MIN = _env("RESPONSE_PARTIAL_AFTER_MIN", 30.0)
    #: Events the applier folds per transaction (see services/ingest/applier.py); 0 = as suits
    #: the database: 2000 on PostgreSQL (a chunk's fixed statements then cost less per event),
    #: 1000 on SQLite (the chunk holds the one writer lock, which the endpoint waits for).
    APPLIER_CHUNK = _env("APPLIER_CHUNK", 0)
    #: Appliers each `funnelcake worker` runs (threads); 0 = as suits the database: 4 on
    #: PostgreSQL (half an applier's time is the database's, and under a full load of the web
    #: workers fewer get too small a share of the cores to keep up), 1 on SQLite (one writer at
    #: a time: a second would only wait).
    APPLIERS = _env("APPLIERS", 0)
    #: Statement timeout and connect timeout for the database, so a fault answers fast (503).
    DB_CONNECT_TIMEOUT_S = _env("DB_CONNECT_TIMEOUT_S", 2)
    #: Connections each worker process keeps open, and how many more it may open in a burst.
    DB_POOL_SIZE = _env("DB_POOL_SIZE", 5)
    DB_MAX_OVERFLOW = _env("DB_MAX_OVERFLOW", 10)
    #: Seconds a request waits for a free pooled connection before it answers 503. Longer than
    #: the connect timeout: a busy pool is a burst to wait out, a dead database is not.
    DB_POOL_TIMEOUT_S = _env("DB_POOL_TIMEOUT_S", 10)
    #: Proxies in front of the service whose X-Forwarded-For/-Proto/-Host are believed (rate
    #: limits key on the client address): 1 behind one load balancer. 0 (believe no header)
    #: unless the deployment says so: otherwise a client reaching gunicorn directly could name
    #: its own address and dodge every per-address limit.
    TRUSTED_PROXY_HOPS = _env("TRUSTED_PROXY_HOPS", 0)
    #: Hosts, addresses and networks (comma-separated: ``hooks.internal, 10.1.0.0/16``) that
    #: webhooks may call although they are not public addresses. Empty: public addresses only,
    #: so an admin cannot point a webhook at the server's own network or a cloud metadata service.
    WEBHOOK_ALLOWED_HOSTS = _env("WEBHOOK_ALLOWED_HOSTS", "")
    #: Send the session cookie over HTTPS only (turn off for plain-HTTP local use).
    SESSION_COOKIE_SECURE = _env("SESSION_COOKIE_SECURE", False)
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    #: Hours an admin stays logged in without logging in again.
    ADMIN_SESSION_HOURS = _env("ADMIN_SESSION_HOURS", 12)
    #: Failed logins in a row that lock an admin account, and for how many minutes.
    ADMIN_MAX_FAILED_LOGINS = _env("ADMIN_MAX_FAILED_LOGINS", 5)
    ADMIN_LOCKOUT_MINUTES = _env("ADMIN_LOCKOUT_MINUTES", 15)
    #: Login attempts per client IP (flask-limiter syntax), on top of the account lockout.
    RATELIMIT_LOGIN = _env("RATELIMIT_LOGIN", "10 per minute")
    #: CSRF tokens last as long as the session (a long edit must not lose the form).
    WTF_CSRF_TIME_LIMIT = None
    #: Largest request body accepted (the events batch limit of the spec).
    MAX_CONTENT_LENGTH = 500 * 1024
    JSON_SORT_KEYS = False

    @classmethod
    def as_dict(cls) -> dict:
        values = {k: getattr(cls, k) for k in dir(cls) if k.isupper()}
        if not values["SECRET_KEY"]:
            values["SECRET_KEY"] = _secret_key()
        return values
