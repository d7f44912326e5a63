"""Finding and creating visitors by the id the snippet made."""

from datetime import timedelta

from sqlalchemy import Integer, bindparam, literal, select, union_all, update
from sqlalchemy.engine import Row

from ...extensions import db
from ...models import Visitor
from ...models.types import utcnow
from ..platform.sets import one_of
from ..platform.upsert import insert_ignoring_conflicts

#: ``last_seen_at`` is refreshed at most this often, so a page view costs no write.
LAST_SEEN_RESOLUTION = timedelta(minutes=5)


def get_or_create_visitor(site_id: int, visitor_key: str) -> tuple[Visitor, bool]:
    """The visitor with this key, created on first sight; True when it was just created.

    Safe under concurrency: two first requests of one visitor create one row.
    """
    visitor = _find(site_id, visitor_key)
    created = False
    if visitor is None:
        now = utcnow()
        inserted = insert_ignoring_conflicts(
            Visitor,
            [_new_row(site_id, visitor_key, now)],
            ["site_id", "visitor_key"],
            returning=[Visitor.id],
        )
        created = bool(inserted)
        visitor = _find(site_id, visitor_key)
    elif utcnow() - visitor.last_seen_at > LAST_SEEN_RESOLUTION:
        visitor.last_seen_at = utcnow()
    return visitor, created


#: Decide's reads, built once: a request only binds the values (no statement to construct).
_VISITORS = Visitor.__table__
_VISITOR_BY_KEY = select(_VISITORS).where(
    _VISITORS.c.site_id == bindparam("site_id"), _VISITORS.c.visitor_key == bindparam("key")
)
_VISITOR_BY_ID = select(_VISITORS).where(_VISITORS.c.id == bindparam("id"))
#: The bound names must not be column names: SQLAlchemy reserves those in an UPDATE for the SET
#: clause (``id`` here answered every returning visitor's decide with a 500).
_TOUCH = (
    update(_VISITORS)
    .where(_VISITORS.c.id == bindparam("visitor_id"))
    .values(last_seen_at=bindparam("seen_at"))
)


def visitor_row(site_id: int, visitor_key: str) -> tuple[Row, bool]:
    """The visitor with this key as a read-only row (the survivor if merged), created on first
    sight, and whether this call created it; ``last_seen_at`` is refreshed as by
    ``get_or_create_visitor``.

    Decide's path, the busiest of all: plain rows cost a fraction of ORM objects, and decide
    changes nothing on the visitor but ``last_seen_at``. A new visitor costs the read that
    missed and the insert, which returns the row.
    """
    connection = db.session.connection()
    row = _row_of(connection, site_id, visitor_key)
    if row is None:
        created = insert_ignoring_conflicts(
            Visitor,
            [_new_row(site_id, visitor_key, utcnow())],
            ["site_id", "visitor_key"],
            returning=list(_VISITORS.c),
        )
        if created:
            return created[0], True
        return _row_of(connection, site_id, visitor_key), False  # a concurrent decide made it
    now = utcnow()
    if now - row.last_seen_at > LAST_SEEN_RESOLUTION:
        connection.execute(_TOUCH, {"visitor_id": row.id, "seen_at": now})
    return row, False


def _row_of(connection, site_id: int, visitor_key: str) -> Row | None:
    row = connection.execute(_VISITOR_BY_KEY, {"site_id": site_id, "key": visitor_key}).first()
    if row is not None and row.merged_into_id is not None:
        row = connection.execute(_VISITOR_BY_ID, {"id": row.merged_into_id}).first()
    return row


def find_visitor(site_id: int, visitor_key: str) -> Visitor | None:
    """The visitor with this key (the survivor if it was merged), or None; never creates one."""
    return _find(site_id, visitor_key)


#: A visitor's id and the survivor's id when identify merged it: two columns by the unique index.
_VISITOR_ID = select(Visitor.__table__.c.id, Visitor.__table__.c.merged_into_id).where(
    Visitor.__table__.c.site_id == bindparam("site_id"),
    Visitor.__table__.c.visitor_key == bindparam("visitor_key"),
)


def visitor_id_of(site_id: int, visitor_key: str) -> int | None:
    """The id of the visitor with this key (the survivor's if it was merged), or None: one
    indexed read of two columns, for paths that need no more of the visitor (a spin)."""
    row = db.session.execute(_VISITOR_ID, {"site_id": site_id, "visitor_key": visitor_key}).first()
    if row is None:
        return None
    return row.merged_into_id or row.id


def ids_standing_for(visitor_id):
    """The ids that stand for one visitor, as a ``SELECT`` of one column, ``visitor_id``:
    theirs, and those of the visitors identify merged into them. ``visitor_id`` is a value or a
    ``bindparam``.

    For ``column.in_(...)`` or a join, where ``column = :id OR column IN (merged)`` could only be
    a filter: a visitor's spin was looked for among every spin of the wheel.
    """
    if isinstance(visitor_id, int):
        visitor_id = literal(visitor_id, Integer)
    visitors = Visitor.__table__
    merged = select(visitors.c.id.label("visitor_id")).where(
        visitors.c.merged_into_id == visitor_id
    )
    return union_all(select(visitor_id.label("visitor_id")), merged)


def get_or_create_visitors(site_id: int, visitor_keys: set[str]) -> dict[str, Visitor]:
    """Every visitor of these keys, creating the missing ones in one statement."""
    found = _find_many(site_id, visitor_keys)
    missing = visitor_keys - found.keys()
    if missing:
        now = utcnow()
        insert_ignoring_conflicts(
            Visitor,
            [_new_row(site_id, key, now) for key in sorted(missing)],
            ["site_id", "visitor_key"],
        )
        found.update(_find_many(site_id, missing))
    return found


def _new_row(site_id: int, visitor_key: str, now) -> dict:
    return {
        "site_id": site_id,
        "visitor_key": visitor_key,
        "attributes": {},
        "scores": {},
        "order_count": 0,
        "total_spent": 0,
        "email_consent": False,
        "first_seen_at": now,
        "last_seen_at": now,
    }


def _find(site_id: int, visitor_key: str) -> Visitor | None:
    visitor = db.session.scalar(
        select(Visitor).where(Visitor.site_id == site_id, Visitor.visitor_key == visitor_key)
    )
    if visitor is not None and visitor.merged_into_id is not None:
        # Merged into the customer's visitor by identify: act on the survivor (one hop, always).
        visitor = db.session.get(Visitor, visitor.merged_into_id)
    return visitor


def _find_many(site_id: int, visitor_keys: set[str]) -> dict[str, Visitor]:
    if not visitor_keys:
        return {}
    rows = db.session.scalars(
        select(Visitor).where(Visitor.site_id == site_id, one_of(Visitor.visitor_key, visitor_keys))
    ).all()
    survivor_ids = {v.merged_into_id for v in rows if v.merged_into_id is not None}
    survivors = {}
    if survivor_ids:
        survivors = {
            v.id: v for v in db.session.scalars(select(Visitor).where(Visitor.id.in_(survivor_ids)))
        }
    return {v.visitor_key: survivors.get(v.merged_into_id, v) for v in rows}
