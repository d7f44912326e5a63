"""``column IN (values)`` for the many values of a bulk read, as one parameter on PostgreSQL.

SQLAlchemy writes an ``IN`` of a list as one placeholder per value, rendered again at every
execution (on PostgreSQL with a cast each): for the applier's reads of a chunk's hundreds of
visitors that rendering cost more than the query. ``= ANY(array)`` is one parameter and one
fixed statement; SQLite has no arrays and keeps the ``IN``.
"""

from collections.abc import Iterable

from sqlalchemy import any_, bindparam
from sqlalchemy.dialects.postgresql import ARRAY

from ...extensions import db


def one_of(column, values: Iterable):
    """A condition: ``column`` is one of ``values``."""
    values = list(values)
    if db.session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam(None, values, type_=ARRAY(column.type)))
    return column.in_(values)
