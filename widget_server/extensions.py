"""Extension objects, bound to an app by ``create_app`` with ``init_app``."""

import os
import time
from pathlib import Path

from flask import request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.pool import Pool


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
#: CSRF tokens on every admin-page form; the APIs (site keys, bearer tokens) are exempt.
csrf = CSRFProtect()


def client_ip() -> str:
    """The client address for rate limits (a proxy's X-Forwarded-For is applied by ProxyFix)."""
    return get_remote_address() or request.remote_addr or "unknown"


limiter = Limiter(key_func=client_ip, headers_enabled=True)


def normalise_database_url(url: str) -> str:
    """Use the psycopg 3 driver for plain ``postgresql://`` URLs."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


@event.listens_for(Engine, "do_connect")
def _private_sqlite_file(dialect, connection_record, cargs, cparams) -> None:
    """Create a new SQLite file readable by its owner only (0600, in a 0700 folder when the
    folder is new too): it holds site secrets and visitors' e-mails, and SQLite would create it
    with the umask's mode (world-readable, usually). Its -wal and -shm files take its mode."""
    if dialect.name != "sqlite" or cparams.get("uri"):
        return
    database = str(cargs[0] if cargs else cparams.get("database", ""))
    if database in ("", ":memory:"):
        return
    path = Path(database)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass  # an existing database keeps the mode its operator gave it


#: How long a SQLite connection waits for the writer lock, inside SQLite.
SQLITE_BUSY_TIMEOUT_MS = 15000


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, connection_record):
    """SQLite: enforce foreign keys, let readers and the one writer work side by side (WAL)."""
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()


#: A pooled connection idle for longer than this is tried before it is handed out.
IDLE_PING_S = 5.0


@event.listens_for(Pool, "checkin")
def _note_idle_since(dbapi_connection, connection_record) -> None:
    connection_record.info["idle_since"] = time.monotonic()


@event.listens_for(Pool, "checkout")
def _ping_if_idle(dbapi_connection, connection_record, connection_proxy) -> None:
    """Try a PostgreSQL connection that sat idle in the pool (the server may have restarted, or
    a proxy dropped it) before handing it out; a dead one is replaced (SQLAlchemy retries the
    checkout on ``DisconnectionError``).

    Not every checkout, as ``pool_pre_ping`` would: that is a round trip per request, a sixth of
    an events request's time under load, spent on connections used a millisecond before. A
    connection that dies while in use fails its statement, the pool drops every connection
    opened before it, and the request answers 503 (the snippet retries) or, where the work is
    safe to repeat, is retried once (``services.platform.reconnect.once_more_if_disconnected``).
    """
    idle_since = connection_record.info.get("idle_since")
    if idle_since is None or time.monotonic() - idle_since < IDLE_PING_S:
        return
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        return  # a file: nothing between us and it to drop the connection
    try:
        cursor = dbapi_connection.cursor()
        cursor.execute("SELECT 1")
        cursor.close()
    except Exception as error:
        raise DisconnectionError("an idle pooled connection no longer answers") from error
