"""``INSERT ... ON CONFLICT DO NOTHING`` for SQLite and PostgreSQL alike."""

from functools import cache

from sqlalchemy.dialects import postgresql, sqlite

from ...extensions import db


def insert_ignoring_conflicts(model, rows: list[dict], conflict_columns: list[str], returning=None):
    """Insert ``rows``; a row that hits the unique ``conflict_columns`` is skipped, not an error.

    Returns the ``returning`` columns of the rows actually inserted (empty when ``returning`` is
    None): that is how idempotent ingestion tells new rows from duplicates in one statement.
    The rows travel as parameters of one fixed statement (SQLAlchemy's "insertmanyvalues" batches
    them), so the statement is compiled once per process, not once per request.
    """
    if not rows:
        return []
    dialect = db.session.get_bind().dialect.name
    returning_key = tuple(returning) if returning is not None else None
    statement = _statement(dialect, model.__table__, tuple(conflict_columns), returning_key)
    result = db.session.execute(statement, rows)
    return result.all() if returning is not None else []


@cache
def _statement(dialect: str, table, conflict_columns: tuple, returning: tuple | None):
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(table).on_conflict_do_nothing(index_elements=list(conflict_columns))
    return statement.returning(*returning) if returning is not None else statement
