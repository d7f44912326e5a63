"""The wheel's spin: the server picks the slice and hands out a code, once per visitor.

The browser only asks; it never says which slice it wants. One spin per visitor per campaign
(and per e-mail address per campaign when the wheel captures one) is held by unique constraints
on ``spins``: the spin row is inserted first (insert-ignore), so a repeated or concurrent request
finds the first one's row and answers with its slice and code. A code is then taken from the
slice's pool with one statement, ``UPDATE ... WHERE id = (SELECT ... LIMIT 1 FOR UPDATE SKIP
LOCKED)``: on PostgreSQL concurrent spins skip each other's locked rows, on SQLite the statement
runs under the database's single write lock. An empty pool makes the spin land on the variant's
"no prize" slice; a code is never handed out twice.
"""

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from ...errors import Conflict, NotFound, ValidationFailed
from ...extensions import db
from ...models import Assignment, CouponCode, Spin, Variant, Visitor
from ...models.types import utcnow
from ..campaigns.site_config import CampaignConfig, SiteConfig
from ..ingest import applier
from ..promotion import metrics
from ..visitors.records import find_visitor

#: Secure random source (os.urandom): outcomes cannot be predicted from earlier ones.
_secure_random = random.SystemRandom()


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

    def as_json(self) -> dict:
        return {
            "campaign_id": self.campaign_id,
            "variant_id": self.variant_id,
            "slice_index": self.slice_index,
            "label": self.label,
            "code": self.code,
            "repeated": self.repeated,
        }


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

    :raise NotFound: no running wheel campaign of this id on the site.
    :raise Conflict: the visitor was never offered the wheel (no decide), is in its holdout, or
        the e-mail address already won in this campaign.
    :raise ValidationFailed: the wheel requires an e-mail address and none was given.
    """
    campaign = _running_wheel(site, request["campaign_id"])
    visitor = find_visitor(site.id, request["visitor_id"])
    if visitor is None:
        raise Conflict(
            "This visitor has not been offered this wheel; call decide first.",
            {"visitor_id": ["Unknown visitor: no decide was made for this id."]},
        )
    first = _spin_of(campaign.id, visitor.id)
    if first is not None:
        return _result(first, repeated=True)
    # A survey completed a moment ago earns its reward wheel even while the applier lags.
    applier.apply_visitor(site.id, request["visitor_id"])
    variant = _variant_shown(site, campaign, visitor)
    slices = variant.content["slices"]
    email = _email(variant.content, request)
    email_key = normalised_email(email) if email else None
    now = utcnow()
    chosen = choose_slice([float(s["weight"]) for s in slices])
    spin_id = _claim_spin(campaign.id, variant.id, visitor.id, chosen, slices, email_key, now)
    if spin_id is None:
        db.session.rollback()
        first = _spin_of(campaign.id, visitor.id)
        if first is not None:
            return _result(first, repeated=True)
        raise Conflict(
            "This e-mail address already received a reward from this wheel.",
            {"email": ["Already used in this campaign."]},
        )
    index, code, coupon_id = _reward(slices, chosen, campaign.id, variant.id, visitor.id, now)
    spin_row = db.session.get(Spin, spin_id)
    spin_row.slice_index = index
    spin_row.label = _plain_label(slices[index]["label"])
    spin_row.code = code
    spin_row.coupon_id = coupon_id
    if email and request.get("email_consent"):
        visitor.email, visitor.email_consent = email, True
    metrics.record_conversion(campaign.id, visitor.id, "spin", now)
    if email:
        metrics.record_conversion(campaign.id, visitor.id, "email_capture", now)
    db.session.commit()
    return SpinResult(campaign.id, variant.id, index, slices[index]["label"], code, False)


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
    merged = select(Visitor.id).where(Visitor.merged_into_id == visitor_id)
    return db.session.scalar(
        select(Spin)
        .where(
            Spin.campaign_id == campaign_id,
            or_(Spin.visitor_id == visitor_id, Spin.visitor_id.in_(merged)),
        )
        .order_by(Spin.visitor_id != visitor_id, Spin.id)
        .limit(1)
    )


def _variant_shown(site: SiteConfig, campaign: CampaignConfig, visitor: Visitor) -> Variant:
    """The variant decide shows this visitor: the promoted one, else their sticky assignment.

    Only decide makes assignments, so one exists only for a wheel the server offered this
    visitor: by its own targeting, or as the reward of a survey (``reward_only``), which the
    visitor must then have completed.

    :raise Conflict: naming ``visitor_id`` when the server did not offer this visitor the wheel.
    """
    assignment = db.session.scalar(
        select(Assignment).where(
            Assignment.campaign_id == campaign.id, Assignment.visitor_id == visitor.id
        )
    )
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
    if assignment.reward_only and not _completed_a_survey_offering(site, campaign.id, visitor.id):
        raise Conflict(
            "This wheel is the reward of a survey this visitor has not completed.",
            {"visitor_id": ["Complete the survey that offers this wheel first."]},
        )
    variant = db.session.get(Variant, campaign.promoted_variant_id or assignment.variant_id)
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


def _claim_spin(campaign_id, variant_id, visitor_id, index, slices, email, now) -> int | None:
    """Insert the visitor's spin row unless one exists (or the e-mail won already): its id."""
    dialect = db.session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = (
        insert(Spin)
        .values(
            campaign_id=campaign_id,
            variant_id=variant_id,
            visitor_id=visitor_id,
            slice_index=index,
            label=_plain_label(slices[index]["label"]),
            email=email,
            created_at=now,
        )
        # Either unique constraint (campaign x visitor, campaign x e-mail) makes it a no-op.
        .on_conflict_do_nothing()
        .returning(Spin.id)
    )
    return db.session.scalar(statement)


def _reward(slices, index, campaign_id, variant_id, visitor_id, now):
    """``(slice index, code, coupon id)``: the chosen slice's reward, or the fallback slice."""
    reward = slices[index].get("reward") or {"type": "none"}
    if reward["type"] == "code":
        return index, reward["code"], None
    if reward["type"] == "pool":
        taken = allocate_code(reward["pool_id"], campaign_id, variant_id, visitor_id, now)
        if taken is not None:
            return index, taken[1], taken[0]
        index = fallback_index(slices)
    return index, None, None


def allocate_code(
    pool_id: int, campaign_id: int, variant_id: int, visitor_id: int, now: datetime
) -> tuple[int, str] | None:
    """Mark one available code of the pool as assigned to the visitor: ``(id, code)``, or None
    when the pool has no code left (or all that are left are being taken right now)."""
    codes = CouponCode.__table__
    candidate = (
        select(codes.c.id)
        .where(codes.c.pool_id == pool_id, codes.c.status == "available")
        .order_by(codes.c.id)
        .limit(1)
        .with_for_update(skip_locked=True)  # PostgreSQL; SQLite has one writer at a time
        .scalar_subquery()
    )
    row = db.session.execute(
        update(codes)
        .where(codes.c.id == candidate, codes.c.status == "available")
        .values(
            status="assigned",
            visitor_id=visitor_id,
            campaign_id=campaign_id,
            variant_id=variant_id,
            assigned_at=now,
        )
        .returning(codes.c.id, codes.c.code)
    ).first()
    return (row.id, row.code) if row is not None else None


def _plain_label(label) -> str:
    """A label as one text for the spins table (the default locale of a per-locale label)."""
    if isinstance(label, dict):
        label = label.get("") or next(iter(label.values()), "")
    return str(label)[:200]


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
    )
