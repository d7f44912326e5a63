"""Coupon pools: create, import codes (CSV or a list), generate unguessable codes, count stock.

A code is given to at most one visitor, ever (SPEC §2): it goes ``available`` -> ``assigned``
(by a spin, see :mod:`.spin`) -> ``redeemed`` (by an order, see :mod:`.orders`). Codes are unique
per site, so an order's code names one pool and one variant.
"""

import csv
import io
import math
import re
import secrets
from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy import func, select

from ..errors import Conflict, ValidationFailed
from ..extensions import db
from ..models import CouponCode, CouponPool, Site
from ..models.types import utcnow
from .rows import get_or_404
from .upsert import insert_ignoring_conflicts

#: Generated codes use 32 symbols without look-alikes (no 0/O, 1/I): 5 bits per symbol.
ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
#: 12 symbols = 60 bits from ``secrets``: guessing one of a million live codes takes ~2^40 tries.
MIN_RANDOM_SYMBOLS = 12
MAX_RANDOM_SYMBOLS = 32
MAX_GENERATE = 100_000
#: An imported code: printable ASCII without spaces, as shops' coupon systems accept.
CODE_PATTERN = re.compile(r"^[\x21-\x7e]{1,100}$")
PREFIX_PATTERN = re.compile(r"^[A-Za-z0-9_\-]{0,40}$")
STATUSES = ("available", "assigned", "redeemed")
_CHUNK = 1000


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
    return symbols * math.log2(len(ALPHABET))


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
        if not CODE_PATTERN.match(code):
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

    :raise ValueError: a count, prefix or length out of range.
    """
    if not 1 <= count <= MAX_GENERATE:
        raise ValueError(f"count must be 1..{MAX_GENERATE}, not {count}")
    if not MIN_RANDOM_SYMBOLS <= symbols <= MAX_RANDOM_SYMBOLS:
        raise ValueError(f"symbols must be {MIN_RANDOM_SYMBOLS}..{MAX_RANDOM_SYMBOLS}")
    if not PREFIX_PATTERN.match(prefix):
        raise ValueError("prefix: up to 40 letters, digits, '_' or '-'")
    made = 0
    now = utcnow()
    while made < count:
        # A clash with an existing code (about 2^-60 per pair) is skipped and drawn again.
        batch = [_random_code(prefix, symbols) for _ in range(min(_CHUNK, count - made))]
        made += len(
            insert_ignoring_conflicts(
                CouponCode,
                [_new_code(pool, code, now) for code in batch],
                ["site_id", "code"],
                returning=[CouponCode.id],
            )
        )
    db.session.commit()
    return made


def _random_code(prefix: str, symbols: int) -> str:
    body = "".join(secrets.choice(ALPHABET) for _ in range(symbols))
    return prefix + "-".join(body[i : i + 4] for i in range(0, symbols, 4))


def _new_code(pool: CouponPool, code: str, now) -> dict:
    return {
        "site_id": pool.site_id,
        "pool_id": pool.id,
        "code": code,
        "status": "available",
        "created_at": now,
    }


def check_slice_pools(site_id: int, content: dict, prefix: str) -> None:
    """Every wheel slice's pool must be a pool of the variant's site.

    :raise ValidationFailed: naming ``<prefix>.slices.<i>.reward.pool_id``.
    """
    wanted = {
        index: s["reward"]["pool_id"]
        for index, s in enumerate(content.get("slices") or [])
        if s.get("reward", {}).get("type") == "pool"
    }
    if not wanted:
        return
    known = set(
        db.session.scalars(
            select(CouponPool.id).where(
                CouponPool.site_id == site_id, CouponPool.id.in_(set(wanted.values()))
            )
        )
    )
    errors = {
        f"{prefix}.slices.{index}.reward.pool_id": [f"No coupon pool {pool_id} on this site."]
        for index, pool_id in wanted.items()
        if pool_id not in known
    }
    if errors:
        raise ValidationFailed("A slice names a coupon pool this site does not have.", errors)
