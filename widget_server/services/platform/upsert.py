"""Set-based writes for SQLite and PostgreSQL alike: ``INSERT ... ON CONFLICT DO NOTHING`` and
``UPDATE`` of many rows by primary key in one statement."""

from datetime import date, datetime
from decimal import Decimal
from functools import cache

from sqlalchemy import JSON, Text, bindparam, cast, func, inspect, literal_column, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm.attributes import get_history, set_committed_value

from ...extensions import db
from . import stored_json


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


def insert_json_rows(
    connection, table, rows: list[dict], conflict_columns: tuple[str, ...]
) -> list[tuple]:
    """Insert ``rows`` (dicts of the same columns) skipping any that hit ``conflict_columns``;
    returns the ``conflict_columns`` of the rows inserted."""
    if not rows:
        return []
    sql, parameters = json_insert(connection.dialect, table, rows, conflict_columns)
    return connection.exec_driver_sql(sql, parameters).all()


def json_insert(dialect, table, rows: list[dict], conflict_columns: tuple[str, ...]):
    """The statement and parameters of :func:`insert_json_rows`, made once so that a write
    that is tried again (a lock taken) does not make them again. The events endpoint's write.

    The rows travel as one JSON text that the database unpacks (PostgreSQL's
    ``json_populate_recordset``, SQLite's ``json_each``): one parameter and one fixed statement
    whatever the batch size, no statement compiled or parameter processed per row on our side,
    and PostgreSQL's driver prepares the statement after a few runs. Values are written as the
    columns' own types would bind them, so rows read back the same as ORM-written ones.
    """
    sql = _json_insert_sql(dialect.name, table, tuple(rows[0]), conflict_columns)
    return sql, (_rows_as_json(dialect, table, rows),)


def sqlite_insert(dialect, table, batches: list[list[dict]], conflict_columns: tuple[str, ...]):
    """SQLite's insert of rows skipping those that hit ``conflict_columns``, and each batch's
    rows as parameter tuples bound as the columns' types bind them: for one ``executemany`` per
    batch, whose count of changed rows tells how many were new."""
    columns = tuple(next(batch for batch in batches if batch)[0])
    processors = _bind_processors(dialect, table, columns)
    converted = [(place, process) for place, (_, process) in enumerate(processors) if process]
    # The rows of a write share their times (arrival, and the occurrence of every event sent
    # without one): each distinct time is converted once.
    seen: dict = {}
    parameters = []
    for batch in batches:
        rows = []
        for row in batch:
            values = list(row.values())
            for place, process in converted:
                value = values[place]
                if value is None:
                    continue
                if type(value) is datetime:
                    bound = seen.get(value)
                    if bound is None:
                        bound = seen[value] = process(value)
                    values[place] = bound
                else:
                    values[place] = process(value)
            rows.append(tuple(values))
        parameters.append(rows)
    return _sqlite_insert_sql(table, columns, conflict_columns), parameters


@cache
def _sqlite_insert_sql(table, columns: tuple[str, ...], conflict: tuple[str, ...]) -> str:
    return (
        f"INSERT INTO {table.name} ({', '.join(columns)}) "
        f"VALUES ({', '.join('?' for _ in columns)}) "
        f"ON CONFLICT ({', '.join(conflict)}) DO NOTHING"
    )


@cache
def _json_insert_sql(dialect: str, table, columns: tuple[str, ...], conflict: tuple[str, ...]):
    names = ", ".join(columns)
    if dialect == "postgresql":
        source = f"SELECT {names} FROM json_populate_recordset(NULL::{table.name}, %s::json)"
    else:
        # "WHERE true" tells SQLite's parser the ON CONFLICT belongs to the INSERT.
        picks = ", ".join(f"json_extract(value, '$.{name}')" for name in columns)
        source = f"SELECT {picks} FROM json_each(?) WHERE true"
    key = ", ".join(conflict)
    return (
        f"INSERT INTO {table.name} ({names}) {source} "
        f"ON CONFLICT ({key}) DO NOTHING RETURNING {key}"
    )


@cache
def _bind_processors(dialect, table, columns: tuple[str, ...]):
    """Each column's own bind conversion (SQLite's text form of a time, JSON as text)."""
    return tuple(
        (name, table.c[name].type.dialect_impl(dialect).bind_processor(dialect)) for name in columns
    )


def update_rows(table, columns: tuple[str, ...], rows: list[dict]) -> None:
    """Set ``columns`` of many rows, each named by its ``id``, to the rows' values.

    One ``UPDATE ... FROM`` the rows as one JSON array (PostgreSQL's ``json_populate_recordset``,
    the table's own row type converting the values; SQLite's ``json_each``, the values bound as
    the columns' types bind them) writes them all: an executemany would run one statement per
    row (on PostgreSQL a round trip each, at a thousand rows a chunk more than the work) and
    process every parameter of every row in Python. The statement is built once per table and
    columns.
    """
    if not rows:
        return
    connection = db.session.connection()
    dialect = connection.dialect
    given = [{"id": row["id"], **{name: row[name] for name in columns}} for row in rows]
    payload = _rows_as_json(dialect, table, given)
    if dialect.name == "postgresql":
        connection.execute(_update_from_json(table, columns), {"rows": payload})
    else:
        connection.exec_driver_sql(_sqlite_update_from_json(table, columns), (payload,))


def _rows_as_json(dialect, table, rows: list[dict]) -> str:
    """``rows`` as one JSON array for the database to unpack: on PostgreSQL as the table's row
    type reads it back exactly (:func:`_json_value`), on SQLite each value as its column's type
    binds it."""
    if dialect.name == "postgresql":
        return stored_json.dumps(rows, _json_value)
    processors = _bind_processors(dialect, table, tuple(rows[0]))
    return stored_json.dumps(
        [
            {
                name: (value if process is None or value is None else process(value))
                for (name, process), value in zip(processors, row.values(), strict=True)
            }
            for row in rows
        ],
        _json_value,
    )


@cache
def _sqlite_update_from_json(table, columns: tuple[str, ...]) -> str:
    picks = ", ".join(f"json_extract(value, '$.{name}') AS {name}" for name in ("id", *columns))
    sets = ", ".join(f"{name} = given.{name}" for name in columns)
    return (
        f"UPDATE {table.name} SET {sets} "
        f"FROM (SELECT {picks} FROM json_each(?)) AS given WHERE {table.name}.id = given.id"
    )


def _json_value(value):
    """Times and decimals in the forms PostgreSQL reads back exactly."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not a column value")


@cache
def _update_from_json(table, columns: tuple[str, ...]):
    given = (
        func.json_populate_recordset(
            literal_column(f"NULL::{table.name}"), cast(bindparam("rows", type_=Text), JSON)
        )
        .table_valued("id", *columns)
        .alias("given")
    )
    return (
        update(table)
        .where(table.c.id == given.c.id)
        .values({name: given.c[name] for name in columns})
    )


def write_changed(objects, columns: tuple[str, ...]) -> None:
    """Write the ``columns`` of the stored ORM ``objects`` that changed, in one statement
    (:func:`update_rows`), and make their values the committed state, so the session's flush
    (one UPDATE per object) has nothing of them left to write. Objects not yet stored are
    left to the flush."""
    changed = []
    for o in objects:
        state = inspect(o)
        # ``modified`` first: it is a flag, the per-column histories cost far more.
        if state.modified and state.persistent:
            if any(get_history(o, name).has_changes() for name in columns):
                changed.append(o)
    if not changed:
        return
    table = inspect(changed[0]).mapper.local_table
    rows = [{"id": o.id, **{name: getattr(o, name) for name in columns}} for o in changed]
    update_rows(table, columns, rows)
    for o in changed:
        for name in columns:
            set_committed_value(o, name, getattr(o, name))


def add_to_counters(table, key_columns: tuple[str, ...], counter: str, counts: dict) -> None:
    """Add ``counts`` (``{key tuple: n}``) to the ``counter`` column of the rows of ``table``
    named by ``key_columns``, creating the missing rows: one upsert, rows in key order so that
    concurrent writers lock them in the same order."""
    if not counts:
        return
    rows = [
        {**dict(zip(key_columns, key, strict=True)), counter: n}
        for key, n in sorted(counts.items())
    ]
    db.session.execute(
        _counter_statement(db.session.get_bind().dialect.name, table, key_columns, counter), rows
    )


@cache
def _counter_statement(dialect: str, table, key_columns: tuple[str, ...], counter: str):
    statement = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
    return statement.on_conflict_do_update(
        index_elements=list(key_columns),
        set_={counter: table.c[counter] + statement.excluded[counter]},
    )
