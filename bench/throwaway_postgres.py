"""A throw-away PostgreSQL database for a benchmark, on the server FUNNELCAKE_BENCH_POSTGRES_URL
names (default ``postgresql://postgres@127.0.0.1:5432/postgres``, used only to create and drop
it)."""

import os

from sqlalchemy import create_engine, text

from widget_server.extensions import normalise_database_url


def admin_url() -> str:
    raw = os.environ.get(
        "FUNNELCAKE_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
    )
    return normalise_database_url(raw)


def _on_server(statement: str) -> None:
    engine = create_engine(admin_url(), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(statement))
    engine.dispose()


def fresh_database(name: str) -> str:
    """Create the database ``name`` anew (dropping one left behind); its URL."""
    drop_database(name)
    _on_server(f'CREATE DATABASE "{name}"')
    return admin_url().rsplit("/", 1)[0] + f"/{name}"


def drop_database(name: str) -> None:
    _on_server(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
