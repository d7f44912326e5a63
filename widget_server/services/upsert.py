"""``INSERT ... ON CONFLICT DO NOTHING`` for SQLite and PostgreSQL alike."""

from sqlalchemy.dialects import postgresql, sqlite

from ..extensions import db


def insert_ignoring_conflicts(model, rows: list[dict], conflict_columns: list[str], returning=None):
    """Insert ``rows``; a row that hits the unique ``conflict_columns`` is skipped, not an error.

    Returns the ``returning`` columns of the rows actually inserted (empty when ``returning`` is
    None): that is how idempotent ingestion tells new rows from duplicates in one statement.
    """
    if not rows:
        return []
    dialect = db.session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(model).values(rows).on_conflict_do_nothing(index_elements=conflict_columns)
    if returning is not None:
        return db.session.execute(statement.returning(*returning)).all()
    db.session.execute(statement)
    return []
