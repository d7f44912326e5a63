"""Coupon pools: create, import codes (CSV or a list), generate unguessable codes, count stock.

A code is given to at most one visitor, ever: it goes ``available`` -> ``assigned``
(by a spin, see :mod:`.spin`) -> ``redeemed`` (by an order, see :mod:`.orders`). Codes are unique
per site, so an order's code names one pool and one variant.
"""

import csv
import io
import json
import math
import secrets
from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy import String, bindparam, func, literal, select, true
from sqlalchemy.dialects import postgresql, sqlite

from ...errors import Conflict, ValidationFailed
from ...extensions import db
from ...models import CouponCode, CouponPool, Site
from ...models.types import UTCDateTime, utcnow
from ...vocabulary import (
    CODE_ALPHABET,
    CODE_PATTERN,
    MAX_GENERATE,
    MAX_RANDOM_SYMBOLS,
    MIN_RANDOM_SYMBOLS,
    PREFIX_PATTERN,
)
from ..platform.rows import get_or_404
from ..platform.upsert import insert_ignoring_conflicts

_CHUNK = 1000
#: Codes generated per insert statement: 100,000 codes are ten statements.
_GENERATE_CHUNK = 10_000
#: Byte value -> symbol: CODE_ALPHABET[value % 32].
_BYTE_TO_SYMBOL = bytes.maketrans(
    bytes(range(256)), CODE_ALPHABET.encode() * (256 // len(CODE_ALPHABET))
)


@dataclass(frozen=True)
class Stock:
    available: int = 0
    assigned: int = 0
    redeemed: int = 0

    @property
    def total(self) -> int:
        return self.available + self.assigned + self.redeemed

    def as_json(self) -> dict:
        return {
            "available": self.available,
            "assigned": self.assigned,
            "redeemed": self.redeemed,
            "total": self.total,
        }


@dataclass
class ImportResult:
    imported: int = 0
    #: Codes given twice in the import, or already in one of the site's pools: not imported.
    duplicates: list[str] = field(default_factory=list)
    #: ``{"line N": "reason"}`` for rows that are not a usable code.
    invalid: dict[str, str] = field(default_factory=dict)


def random_bits(symbols: int) -> float:
    """Bits of randomness in a generated code of ``symbols`` random symbols."""
    return symbols * math.log2(len(CODE_ALPHABET))


def create_pool(site: Site, name: str) -> CouponPool:
    """:raise Conflict: the site already has a pool of this name."""
    if db.session.scalar(
        select(CouponPool.id).where(CouponPool.site_id == site.id, CouponPool.name == name)
    ):
        raise Conflict(f"The site already has a pool named {name!r}.", {"name": ["Taken."]})
    pool = CouponPool(site_id=site.id, name=name, created_at=utcnow())
    db.session.add(pool)
    db.session.commit()
    return pool


def get_pool(pool_id: int) -> CouponPool:
    return get_or_404(CouponPool, pool_id, "coupon pool")


def find_pool(site_id: int, name: str) -> CouponPool | None:
    return db.session.scalar(
        select(CouponPool).where(CouponPool.site_id == site_id, CouponPool.name == name)
    )


def pools_of_site(site_id: int) -> list[CouponPool]:
    return list(
        db.session.scalars(
            select(CouponPool).where(CouponPool.site_id == site_id).order_by(CouponPool.id)
        )
    )


def stock(pool_ids: list[int]) -> dict[int, Stock]:
    """Codes per status of each pool, in one grouped query."""
    counts: dict[int, dict[str, int]] = {pool_id: {} for pool_id in pool_ids}
    if pool_ids:
        rows = db.session.execute(
            select(CouponCode.pool_id, CouponCode.status, func.count())
            .where(CouponCode.pool_id.in_(pool_ids))
            .group_by(CouponCode.pool_id, CouponCode.status)
        )
        for pool_id, status, count in rows:
            counts[pool_id][status] = int(count)
    return {pool_id: Stock(**by_status) for pool_id, by_status in counts.items()}


def codes_from_csv(text: str) -> list[tuple[int, str]]:
    """``(line, code)`` pairs from a CSV: the ``code`` column if a header names it, else the
    first column; blank lines are skipped.

    :raise ValidationFailed: naming ``codes`` when the text is not CSV the reader can split
        (a cell longer than the csv module's limit of 131,072 characters).
    """
    reader = csv.reader(io.StringIO(text))
    try:
        rows = list(reader)
    except csv.Error as err:
        raise ValidationFailed(
            f"The CSV cannot be read at line {reader.line_num}: {err}.",
            {"codes": [f"line {reader.line_num}: {err}"]},
        ) from None
    column = 0
    start = 0
    if rows:
        header = [cell.strip().lower() for cell in rows[0]]
        if "code" in header:
            column, start = header.index("code"), 1
    found = []
    for line, row in enumerate(rows[start:], start=start + 1):
        if not row or not any(cell.strip() for cell in row):
            continue
        found.append((line, row[column].strip() if column < len(row) else ""))
    return found


def import_codes(pool: CouponPool, codes: list[tuple[int, str]]) -> ImportResult:
    """Add the valid, new codes to ``pool``; report duplicates and invalid rows, never merge.

    ``codes`` are ``(line or position, code)`` pairs. Duplicates within the import and codes the
    site already has (in any pool) are listed in ``duplicates``, each once.
    """
    if not codes:
        raise ValidationFailed("The import has no codes.", {"codes": ["No codes found."]})
    result = ImportResult()
    counts = Counter(code for _, code in codes)
    fresh: list[str] = []
    reported: set[str] = set()
    for line, code in codes:
        if not CODE_PATTERN.fullmatch(code):
            result.invalid[f"line {line}"] = "Not a code (1-100 printable characters, no spaces)."
        elif counts[code] > 1:
            if code not in reported:
                result.duplicates.append(code)
                reported.add(code)
        else:
            fresh.append(code)
    now = utcnow()
    for start in range(0, len(fresh), _CHUNK):
        chunk = fresh[start : start + _CHUNK]
        inserted = {
            code
            for (code,) in insert_ignoring_conflicts(
                CouponCode,
                [_new_code(pool, code, now) for code in chunk],
                ["site_id", "code"],
                returning=[CouponCode.code],
            )
        }
        result.imported += len(inserted)
        result.duplicates.extend(code for code in chunk if code not in inserted)
    db.session.commit()
    return result


def generate_codes(pool: CouponPool, count: int, prefix: str = "", symbols: int = 12) -> int:
    """Add ``count`` random codes ``PREFIX`` + groups of 4 symbols (``DEMO-K7QX-M2ZP-9TAH``).

    Set-based, so the documented maximum fits in one request: 100,000 codes are ten statements,
    about 4 s on PostgreSQL and 1 s on SQLite (it was 30 s and 12 s, a code and a symbol at a
    time, at gunicorn's timeout).

    :raise ValueError: a count, prefix or length out of range.
    """
    if not 1 <= count <= MAX_GENERATE:
        raise ValueError(f"count must be 1..{MAX_GENERATE}, not {count}")
    if not MIN_RANDOM_SYMBOLS <= symbols <= MAX_RANDOM_SYMBOLS:
        raise ValueError(f"symbols must be {MIN_RANDOM_SYMBOLS}..{MAX_RANDOM_SYMBOLS}")
    if not PREFIX_PATTERN.fullmatch(prefix):
        raise ValueError("prefix: up to 40 letters, digits, '_' or '-'")
    made = 0
    now = utcnow()
    while made < count:
        # One insert-ignore per chunk; a code that clashes with one the site has (about 2^-60 per
        # pair) is skipped by the database and only the shortfall is drawn again.
        codes = random_codes(prefix, symbols, min(_GENERATE_CHUNK, count - made))
        inserted = _insert_new_codes(pool, codes, now)
        if inserted <= 0:
            # 10,000 fresh 60-bit codes that all exist already: the generator is broken.
            raise RuntimeError(f"none of {len(codes)} generated codes could be inserted")
        made += inserted
    db.session.commit()
    return made


def random_codes(prefix: str, symbols: int, count: int) -> list[str]:
    """``count`` codes of ``symbols`` random symbols each, from one read of ``secrets``.

    Each random byte picks a symbol by its value modulo 32, which is uniform because 256 is a
    multiple of 32; 100,000 codes take a tenth of a second (``secrets.choice`` per symbol took
    10 s).
    """
    symbols_text = secrets.token_bytes(symbols * count).translate(_BYTE_TO_SYMBOL).decode()
    codes = []
    for start in range(0, len(symbols_text), symbols):
        body = symbols_text[start : start + symbols]
        codes.append(prefix + "-".join(body[i : i + 4] for i in range(0, symbols, 4)))
    return codes


def _insert_new_codes(pool: CouponPool, codes: list[str], now) -> int:
    """Insert ``codes`` into ``pool`` in one statement, skipping codes the site already has;
    return how many were inserted.

    The codes travel as one parameter, a PostgreSQL array or a JSON array on SQLite, which
    ``unnest`` or ``json_each`` turn into rows: an executemany sends one statement per code to
    PostgreSQL and does not report how many were inserted.
    """
    if db.session.get_bind().dialect.name == "postgresql":
        insert = postgresql.insert
        code = func.unnest(bindparam("codes", codes, type_=postgresql.ARRAY(String)))
    else:
        insert = sqlite.insert
        code = func.json_each(bindparam("codes", json.dumps(codes))).table_valued("value").c.value
    rows = select(
        literal(pool.site_id),
        literal(pool.id),
        code,
        literal("available"),
        literal(now, UTCDateTime()),
    ).where(true())  # SQLite reads "FROM ... ON CONFLICT" as a join without it
    statement = insert(CouponCode.__table__).from_select(
        ["site_id", "pool_id", "code", "status", "created_at"], rows
    )
    statement = statement.on_conflict_do_nothing(index_elements=["site_id", "code"])
    # SQLAlchemy keeps an INSERT's row count only when asked (PostgreSQL reported -1 without).
    return db.session.execute(statement.execution_options(preserve_rowcount=True)).rowcount


def _new_code(pool: CouponPool, code: str, now) -> dict:
    return {
        "site_id": pool.site_id,
        "pool_id": pool.id,
        "code": code,
        "status": "available",
        "created_at": now,
    }
