"""The wheel's spin: the server picks the slice and hands out a code, once per visitor.

The browser only asks; it never says which slice it wants. One spin per visitor per campaign
(and per e-mail address per campaign when the wheel captures one) is held by unique constraints
on ``spins``. A code is taken from the slice's pool with one statement, ``UPDATE ... WHERE id =
(SELECT ... LIMIT 1 FOR UPDATE SKIP LOCKED)`` (on PostgreSQL concurrent spins skip each other's
locked rows, on SQLite the statement runs under the database's single write lock), then the spin
row is inserted with it (insert-ignore): a repeated or concurrent request that finds the first
one's row rolls back, code included, and answers with the first spin's slice and code. An empty
pool makes the spin land on the variant's "no prize" slice; a code is never handed out twice.

A spin that hands out a code announces it (``coupon.won``) to the site's webhook when that
subscribes to it: one more insert in the spin's write, the subscription read from the cached
site configuration (no query), nothing at all for a site without one.
"""

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

from sqlalchemy import Integer, any_, bindparam, literal_column, select, true, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import array as pg_array
from sqlalchemy.orm import aliased

from ...errors import Conflict, NotFound, ValidationFailed
from ...extensions import db
from ...models import Assignment, CouponCode, Spin, Variant, Visitor
from ...models.types import utcnow
from ...vocabulary import COUPON_WON
from ..campaigns.site_config import CampaignConfig, SiteConfig, VariantConfig
from ..ingest import applier
from ..platform import webhooks
from ..platform.changes import note_changed_visitors
from ..platform.local_text import plain
from ..platform.sqlite_lock import commit_when_unlocked, take_writer_lock
from ..promotion import metrics
from ..visitors.records import ids_standing_for, visitor_id_of

#: Secure random source (os.urandom): outcomes cannot be predicted from earlier ones.
_secure_random = random.SystemRandom()

# The spin's statements, built once: a spin compiles nothing per request.
_ASSIGNMENTS = Assignment.__table__
_CODES = CouponCode.__table__
_OF_ASSIGNMENT = (
    _ASSIGNMENTS.c.campaign_id == bindparam("campaign_id"),
    _ASSIGNMENTS.c.visitor_id == bindparam("visitor_id"),
)
#: What the checks need of the visitor's assignment to the wheel.
_ASSIGNMENT = select(
    _ASSIGNMENTS.c.variant_id,
    _ASSIGNMENTS.c.holdout,
    _ASSIGNMENTS.c.sampled_out,
    _ASSIGNMENTS.c.reward_only,
).where(*_OF_ASSIGNMENT)
#: The assignment's exposure and stratum, read with the assignment locked (as the applier locks
#: it).
_EXPOSURE = (
    select(_ASSIGNMENTS.c.first_impression_at, _ASSIGNMENTS.c.stratum, _ASSIGNMENTS.c.phase)
    .where(*_OF_ASSIGNMENT)
    .with_for_update()
)


@cache
def _spin_of_statement(dialect: str):
    """The visitor's spin, else the first spin of a visitor identify merged into them: each of
    those visitors' spin is one lookup by (campaign, visitor), however many spins the wheel gave.

    Written as ``visitor_id = :id OR visitor_id IN (merged)``, no index could answer it: every
    spin of the wheel was read at each spin. On PostgreSQL an ``IN`` or a plain join is not
    enough either while a new wheel's statistics (taken before its first spin, renewed by
    autovacuum a minute or more later) say the wheel has no spin; ``JOIN LATERAL (... LIMIT 1)``
    per visitor id keeps each lookup a lookup (the ``LIMIT`` stops it being merged into the
    outer query), and the (campaign, visitor) key is the one index that starts with the wheel
    (migration 0022).
    """
    visitor_id = bindparam("visitor_id", type_=Integer)
    of_wheel = Spin.__table__.c.campaign_id == bindparam("campaign_id")
    if dialect != "postgresql":
        return (
            select(Spin)
            .where(of_wheel, Spin.visitor_id.in_(ids_standing_for(visitor_id)))
            .order_by(Spin.visitor_id != visitor_id, Spin.id)
            .limit(1)
        )
    ids = ids_standing_for(visitor_id).subquery("ids")
    each = (
        select(Spin.__table__)
        .where(of_wheel, Spin.__table__.c.visitor_id == ids.c.visitor_id)
        .limit(1)
        .lateral("spin")
    )
    spin = aliased(Spin, each)
    return (
        select(spin)
        .select_from(ids)
        .join(each, true())
        .order_by(spin.visitor_id != visitor_id, spin.id)
        .limit(1)
    )


#: ``status = 'available'`` with the text in the SQL, not a parameter: it is the predicate of the
#: partial index of available codes, which PostgreSQL's cached (generic) plan of a prepared
#: statement can only use when it sees the value. With a parameter, once psycopg prepared the
#: statement, each spin walked every code already handed out (6 ms a spin after 3,000).
_AVAILABLE = _CODES.c.status == literal_column("'available'")


@cache
def _take_code_statement(dialect: str):
    """One available code of the pool, marked assigned: ``UPDATE ... WHERE id = (SELECT ...
    LIMIT 1 FOR UPDATE SKIP LOCKED)``; PostgreSQL skips rows other spins hold, SQLite has one
    writer.

    The lowest id first, read from the partial index of available codes. On PostgreSQL the
    pool is named as ``pool_id = ANY(ARRAY[:pool])`` and the codes ordered by (pool, id): with
    ``pool_id = :pool ... ORDER BY id`` the planner walked the primary key from the first code,
    expecting an available one at once (most of the pool is), and stepped over every code
    handed out, all of them at the low ids: a spin's cost grew with the pool's use (1 ms after
    3,600 codes, tens of ms near the end of a pool of 50,000). Ordered by (pool, id) with the
    pool not equated to one value, only that index gives the order.
    """
    if dialect == "postgresql":
        of_pool = _CODES.c.pool_id == any_(pg_array([bindparam("to_pool_id", type_=Integer)]))
        order = (_CODES.c.pool_id, _CODES.c.id)
    else:
        of_pool, order = _CODES.c.pool_id == bindparam("to_pool_id"), (_CODES.c.id,)
    return (
        update(_CODES)
        .where(
            _CODES.c.id
            == select(_CODES.c.id)
            .where(of_pool, _AVAILABLE)
            .order_by(*order)
            .limit(1)
            .with_for_update(skip_locked=True)
            .scalar_subquery(),
            _AVAILABLE,
        )
        .values(
            status="assigned",
            visitor_id=bindparam("to_visitor_id"),
            campaign_id=bindparam("to_campaign_id"),
            variant_id=bindparam("to_variant_id"),
            assigned_at=bindparam("to_now"),
            expires_at=bindparam("to_expires_at"),
        )
        .returning(_CODES.c.id, _CODES.c.code)
    )


@cache
def _insert_spin_statement(dialect: str):
    """``INSERT INTO spins ... ON CONFLICT DO NOTHING RETURNING id``: either unique constraint
    (campaign x visitor, campaign x e-mail) makes it a no-op."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(Spin.__table__).on_conflict_do_nothing().returning(Spin.__table__.c.id)


@dataclass(frozen=True)
class SpinResult:
    campaign_id: int
    variant_id: int
    slice_index: int
    #: The slice's label as the variant gives it: a text or ``{locale: text}``.
    label: object
    code: str | None
    #: True when this visitor had already spun: the first result, again.
    repeated: bool
    #: When the code stops being valid, as the server set it at the first spin; None: never.
    expires_at: datetime | None = None

    def as_json(self) -> dict:
        return {
            "campaign_id": self.campaign_id,
            "variant_id": self.variant_id,
            "slice_index": self.slice_index,
            "label": self.label,
            "code": self.code,
            "repeated": self.repeated,
            "expires_at": iso_utc(self.expires_at),
        }


def iso_utc(at: datetime | None) -> str | None:
    """``2026-12-04T18:30:00Z``: UTC to the second, the form the snippet and shops read."""
    return at.strftime("%Y-%m-%dT%H:%M:%SZ") if at is not None else None


def choose_slice(weights: Sequence[float], rng: random.Random = _secure_random) -> int:
    """The index of a slice drawn with probability weight / sum of weights.

    :raise ValueError: no weight above 0, or a negative weight.
    """
    if any(w < 0 for w in weights) or not any(w > 0 for w in weights):
        raise ValueError("weights must be >= 0 with at least one above 0")
    return rng.choices(range(len(weights)), weights=weights)[0]


def fallback_index(slices: Sequence[dict]) -> int:
    """The variant's "no prize" slice: the first whose reward is ``none``."""
    return next(i for i, s in enumerate(slices) if s.get("reward", {}).get("type") == "none")


def spin(site: SiteConfig, request: dict) -> SpinResult:
    """Spin the wheel campaign ``request["campaign_id"]`` for the visitor, or repeat their spin.

    Reads first, then one short write (the code, the spin, its conversions) and the commit: on
    SQLite the writer lock is held only for that write, and waited for without stopping the
    worker's other requests.

    :raise NotFound: no running wheel campaign of this id on the site.
    :raise Conflict: the visitor was never offered the wheel (no decide), is in its holdout, or
        the e-mail address already won in this campaign.
    :raise ValidationFailed: the wheel requires an e-mail address and none was given.
    """
    campaign = _running_wheel(site, request["campaign_id"])
    visitor_id = visitor_id_of(site.id, request["visitor_id"])
    if visitor_id is None:
        raise Conflict(
            "This visitor has not been offered this wheel; call decide first.",
            {"visitor_id": ["Unknown visitor: no decide was made for this id."]},
        )
    first = _spin_of(campaign.id, visitor_id)
    if first is not None:
        return _result(first, repeated=True)
    variant = _variant_shown(site, campaign, visitor_id, request["visitor_id"])
    slices = variant.content["slices"]
    email = _email(variant.content, request)
    chosen = choose_slice([float(s["weight"]) for s in slices])
    won = commit_when_unlocked(
        db.session,
        lambda: _record_spin(
            site, campaign.id, variant.id, visitor_id, slices, chosen, email, request
        ),
    )
    if won is None:
        first = _spin_of(campaign.id, visitor_id)
        if first is not None:
            return _result(first, repeated=True)
        raise Conflict(
            "This e-mail address already received a reward from this wheel.",
            {"email": ["Already used in this campaign."]},
        )
    index, code, expires_at = won
    return SpinResult(
        campaign.id, variant.id, index, slices[index]["label"], code, False, expires_at
    )


def _record_spin(site, campaign_id, variant_id, visitor_id, slices, chosen, email, request):
    """The spin's writes, in the caller's transaction: ``(slice index, code, expiry)``, or None
    (rolled back) when the visitor, or the e-mail address, already has a spin of this campaign.
    A code handed out is announced to the site's ``coupon.won`` webhook, if any.

    The assignment is locked first (on SQLite the writer lock), in the order the applier takes
    its locks, and its exposure read under the lock. The code is taken before the spin row is
    inserted: a spin that then finds one already there rolls back, and the code with it.
    """
    now = utcnow()
    take_writer_lock(db.session)
    exposure = db.session.execute(
        _EXPOSURE, {"campaign_id": campaign_id, "visitor_id": visitor_id}
    ).first()
    exposed_at, stratum, phase = exposure if exposure is not None else (None, None, 1)
    index, code, coupon_id, expires_at = _reward(
        slices, chosen, campaign_id, variant_id, visitor_id, now
    )
    email_key = normalised_email(email) if email else None
    inserted = _insert_spin(
        campaign_id,
        variant_id,
        visitor_id,
        index,
        slices,
        code,
        coupon_id,
        email_key,
        now,
        expires_at,
    )
    if inserted is None:
        db.session.rollback()
        return None
    converted = ("spin", "email_capture") if email else ("spin",)
    ended = _running_wheel(site, campaign_id).phase_ends.get(phase)
    if ended is None or now < ended:  # after the visitor's phase ended it counts nowhere
        metrics.record_first_conversions(
            campaign_id, visitor_id, variant_id, exposed_at, converted, now, stratum, phase, False
        )
    if email and request.get("email_consent"):
        db.session.execute(
            update(Visitor).where(Visitor.id == visitor_id).values(email=email, email_consent=True)
        )
        note_changed_visitors([visitor_id])
    urls = webhooks.subscribed_urls(site.settings, COUPON_WON)
    if code is not None and urls:
        won = {
            "site_id": site.id,
            "campaign_id": campaign_id,
            "variant_id": variant_id,
            "visitor_id": request["visitor_id"],
            "spin_id": inserted,
            "slice_index": index,
            "label": _plain_label(slices[index]["label"]),
            "code": code,
            "expires_at": iso_utc(expires_at),
            "email": email if request.get("email_consent") else None,
        }
        webhooks.enqueue(site.id, urls, COUPON_WON, [(won, now)])
    return index, code, expires_at


def _running_wheel(site: SiteConfig, campaign_id: int) -> CampaignConfig:
    campaign = next((c for c in site.campaigns if c.id == campaign_id), None)
    if campaign is None:
        raise NotFound(
            f"No running campaign {campaign_id} on this site.",
            {"campaign_id": ["Not a running campaign of this site."]},
        )
    if campaign.kind != "wheel":
        raise ValidationFailed(
            f"Campaign {campaign_id} is not a wheel.", {"campaign_id": ["Not a wheel campaign."]}
        )
    return campaign


def _spin_of(campaign_id: int, visitor_id: int) -> Spin | None:
    """The visitor's spin, or the first spin of a visitor identify merged into them: after a
    merge the customer's devices are one visitor, with one spin between them."""
    statement = _spin_of_statement(db.session.get_bind().dialect.name)
    return db.session.scalar(statement, {"campaign_id": campaign_id, "visitor_id": visitor_id})


def _variant_shown(
    site: SiteConfig, campaign: CampaignConfig, visitor_id: int, visitor_key: str
) -> VariantConfig:
    """The variant decide shows this visitor: the promoted one, else their sticky assignment,
    with its content as this worker's site configuration holds it (what decide offered).

    Only decide makes assignments, so one exists only for a wheel the server offered this
    visitor: by its own targeting, or as the reward of a survey (``reward_only``), which the
    visitor must then have completed; a completion still waiting for the applier is applied
    first (the visitor's own pending events, in this transaction).

    :raise Conflict: naming ``visitor_id`` when the server did not offer this visitor the wheel.
    """
    assignment = db.session.execute(
        _ASSIGNMENT, {"campaign_id": campaign.id, "visitor_id": visitor_id}
    ).first()
    if assignment is None:
        raise Conflict(
            "This visitor has not been offered this wheel; call decide first.",
            {"visitor_id": ["Not assigned to this campaign."]},
        )
    if assignment.variant_id is None or assignment.holdout or assignment.sampled_out:
        raise Conflict(
            "This visitor is not shown this wheel (holdout or outside the sampled share).",
            {"visitor_id": ["Not eligible for this campaign."]},
        )
    if assignment.reward_only and not _completed_a_survey_offering(site, campaign.id, visitor_id):
        # A survey completed a moment ago earns its wheel even while the applier lags.
        applier.apply_visitor(site.id, visitor_key)
        if not _completed_a_survey_offering(site, campaign.id, visitor_id):
            raise Conflict(
                "This wheel is the reward of a survey this visitor has not completed.",
                {"visitor_id": ["Complete the survey that offers this wheel first."]},
            )
    variant = campaign.variant(campaign.promoted_variant_id or assignment.variant_id)
    if variant is None or not variant.content.get("slices"):
        raise Conflict("The visitor's variant no longer exists.", {"campaign_id": ["Changed."]})
    return variant


def _completed_a_survey_offering(site: SiteConfig, wheel_id: int, visitor_id: int) -> bool:
    """Whether the visitor completed a running survey whose shown variant offers this wheel."""
    offering = {
        (campaign.id, variant.id)
        for campaign in site.campaigns
        if campaign.kind == "survey"
        for variant in campaign.variants
        if ((variant.public_content.get("thank_you") or {}).get("reward") or {}).get("campaign_id")
        == wheel_id
    }
    if not offering:
        return False
    completed = db.session.execute(
        select(Assignment.campaign_id, Assignment.variant_id).where(
            Assignment.visitor_id == visitor_id,
            Assignment.campaign_id.in_({c for c, _ in offering}),
            Assignment.completed_at.is_not(None),
        )
    ).all()
    promoted = {c.id: c.promoted_variant_id for c in site.campaigns}
    return any(
        (campaign_id, promoted.get(campaign_id) or variant_id) in offering
        for campaign_id, variant_id in completed
    )


def _email(content: dict, request: dict) -> str | None:
    """The e-mail address given for the spin (trimmed), when the wheel captures one.

    :raise ValidationFailed: naming ``email`` when the wheel requires one and none was given.
    """
    capture = content.get("email_capture") or {}
    if not capture.get("enabled"):
        return None
    email = (request.get("email") or "").strip() or None
    if email is None and capture.get("required", True):
        raise ValidationFailed(
            "This wheel asks for an e-mail address before the spin.",
            {"email": ["Required by this wheel."]},
        )
    return email


def normalised_email(address: str) -> str:
    """The key under which one reward per e-mail address is held: ``"Ann+win"@Example.com``,
    ``ann+2@example.com`` and ``ANN@example.com`` are one mailbox, so they get one reward.

    Lower case, quotes around the local part dropped, and a ``+tag`` dropped (sub-addressing:
    Gmail, Outlook, Fastmail and most providers deliver ``ann+anything@`` to ``ann@``).
    """
    local, _, domain = address.strip().rpartition("@")
    local = local.strip().strip('"').split("+", 1)[0]
    return f"{local}@{domain.strip()}".lower()


def _insert_spin(
    campaign_id, variant_id, visitor_id, index, slices, code, coupon_id, email, now, expires_at
) -> int | None:
    """Insert the visitor's spin row unless one exists (or the e-mail won already): its id."""
    statement = _insert_spin_statement(db.session.get_bind().dialect.name)
    row = {
        "campaign_id": campaign_id,
        "variant_id": variant_id,
        "visitor_id": visitor_id,
        "slice_index": index,
        "label": _plain_label(slices[index]["label"]),
        "code": code,
        "coupon_id": coupon_id,
        "email": email,
        "expires_at": expires_at,
        "created_at": now,
    }
    return db.session.scalar(statement, row)


def _reward(slices, index, campaign_id, variant_id, visitor_id, now):
    """``(slice index, code, coupon id, expiry)``: the chosen slice's reward, or the fallback
    slice. The expiry is the slice's ``expires_in_minutes`` from now (None without one)."""
    reward = slices[index].get("reward") or {"type": "none"}
    minutes = slices[index].get("expires_in_minutes")
    expires_at = now + timedelta(minutes=minutes) if minutes else None
    if reward["type"] == "code":
        return index, reward["code"], None, expires_at
    if reward["type"] == "pool":
        taken = allocate_code(
            reward["pool_id"], campaign_id, variant_id, visitor_id, now, expires_at
        )
        if taken is not None:
            return index, taken[1], taken[0], expires_at
        index = fallback_index(slices)
    return index, None, None, None


def allocate_code(
    pool_id: int,
    campaign_id: int,
    variant_id: int,
    visitor_id: int,
    now: datetime,
    expires_at: datetime | None = None,
) -> tuple[int, str] | None:
    """Mark one available code of the pool as assigned to the visitor (valid until
    ``expires_at``, if given): ``(id, code)``, or None when the pool has no code left (or all
    that are left are being taken right now)."""
    row = db.session.execute(
        _take_code_statement(db.session.get_bind().dialect.name),
        {
            "to_pool_id": pool_id,
            "to_campaign_id": campaign_id,
            "to_variant_id": variant_id,
            "to_visitor_id": visitor_id,
            "to_now": now,
            "to_expires_at": expires_at,
        },
    ).first()
    return (row.id, row.code) if row is not None else None


def _plain_label(label) -> str:
    """A label as one text for the spins table (the default locale of a per-locale label)."""
    return str(plain(label))[:200]


def _result(spin_row: Spin, repeated: bool) -> SpinResult:
    """A stored spin, with the slice's label (all its locales) from the variant while the slice
    at that index still bears the label the visitor won; else the label stored with the spin."""
    variant = db.session.get(Variant, spin_row.variant_id)
    slices = (variant.content.get("slices") or []) if variant is not None else []
    label = spin_row.label
    if spin_row.slice_index < len(slices):
        current = slices[spin_row.slice_index]["label"]
        if _plain_label(current) == spin_row.label:
            label = current
    return SpinResult(
        spin_row.campaign_id,
        spin_row.variant_id,
        spin_row.slice_index,
        label,
        spin_row.code,
        repeated,
        spin_row.expires_at,
    )
