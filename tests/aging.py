"""Time passing for tests: every stored timestamp moves back, as if the clock had moved on.

Branches that depend on time (windows, cooldowns, expiries, touches) are tested with aged data:
``time_passes(timedelta(minutes=10))`` makes every row as old as it would be ten minutes later,
so the code under test runs on the real clock against rows it did not just write.
"""

from datetime import timedelta

from sqlalchemy import select, tuple_, update

from widget_server.extensions import db
from widget_server.models.types import UTCDateTime


def time_passes(delta: timedelta, *tables: str) -> None:
    """Move every timestamp of these tables (all tables by default) ``delta`` into the past."""
    db.session.commit()
    for table in db.metadata.sorted_tables:
        if tables and table.name not in tables:
            continue
        stamped = [c for c in table.columns if isinstance(c.type, UTCDateTime)]
        if not stamped:
            continue
        keys = list(table.primary_key.columns)
        for row in db.session.execute(select(*keys, *stamped)).all():
            values = {
                c.name: row[len(keys) + i] - delta
                for i, c in enumerate(stamped)
                if row[len(keys) + i] is not None
            }
            if values:
                db.session.execute(
                    update(table).where(tuple_(*keys) == tuple(row[: len(keys)])).values(**values)
                )
    db.session.commit()
    db.session.expire_all()
