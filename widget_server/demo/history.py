"""Six weeks of made-up shoppers for the demo store, written once, so that a first look at the
results, the automatic promotion and the funnel shows real figures.

The shoppers are drawn from a fixed ``random.Random`` seed and dated back from today, so every
first run writes the same history. Their browser events, spins and orders are folded in time
order the way the live services fold them (ingestion's assignment and response updates and its
``metrics.IngestMetrics`` rollups; the spin and orders services' ``record_conversion`` rules;
the funnel's own ``on_answers`` and ``on_orders`` for scores and stages) and written in bulk,
a statement per table rather than a transaction per event, so that seeding takes a second or
two. Every figure the product shows is read from these rows as it is from live ones; a test
(``tests/test_demo_history.py``) feeds the same traffic to the services call by call and finds
the same rows.
"""

import hashlib
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from datetime import time as day_time
from decimal import Decimal
from itertools import groupby
from types import SimpleNamespace

from sqlalchemy import bindparam, select, update

from ..extensions import db
from ..models import (
    Assignment,
    Campaign,
    CouponCode,
    CouponPool,
    Event,
    MetricConversion,
    Order,
    Response,
    Site,
    Spin,
    StageChange,
    StepReach,
    Visitor,
)
from ..models.types import utcnow
from ..services import funnel
from ..services.campaigns import site_config, strata
from ..services.platform.upsert import add_to_counters, insert_ignoring_conflicts
from ..services.promotion import metrics
from ..services.rewards import coupons, orders
from ..services.rewards import spin as spins
from ..vocabulary import MEAN_METRICS
from .store import DEMO_POOLS, WHEEL_NAME

#: The history is the same on every first run.
SEED = 20_240_601
HISTORY_DAYS = 42
VISITORS = 3_200
CURRENCY = "EUR"
PRICES = (Decimal("14.00"), Decimal("29.00"), Decimal("9.50"))  # the demo store's products
SHIPPING = Decimal("4.90")
FREE_SHIPPING_FROM = Decimal("40.00")
#: What the wheel's slices take off an order, by slice label (free shipping waives the fee).
DISCOUNTS = {"10% off": Decimal("0.10"), "15% off": Decimal("0.15")}

#: Per survey variant (by position: A, B): who answers the first question once shown, and who of
#: those answers to the end. B, the friendlier invitation, completes clearly more often.
START_RATE = (0.30, 0.54)
FINISH_RATE = (0.62, 0.78)
#: Of the visitors who stay on a page long enough for the survey's two-second delay.
SHOWN_RATE = 0.72
EMOTIONAL_WEIGHTS = {1: 7, 2: 10, 3: 23, 4: 33, 5: 27}
MAX_ORDERS = 6


@dataclass(frozen=True)
class SeededHistory:
    """What :func:`seed_history` wrote: the figures the demo command prints."""

    days: int
    visitors: int
    survey_views: int
    completed: int
    spins: int
    orders: int
    customers: int
    duration_s: float


@dataclass
class _Shopper:
    key: str
    first_at: datetime
    variant_index: int
    last_at: datetime
    visited_cart: bool = False
    customer_id: str | None = None
    email: str | None = None
    consent: bool = False
    emotional: int | None = None
    intentional: int | None = None


@dataclass
class _Plan:
    """The history to write, before any row exists, each list in time order."""

    start: datetime
    shoppers: list[_Shopper] = field(default_factory=list)
    events: list[dict] = field(default_factory=list)
    spins: list[dict] = field(default_factory=list)
    orders: list[dict] = field(default_factory=list)
    survey_views: int = 0
    completed: int = 0


def seed_history(site: Site) -> SeededHistory | None:
    """Write the demo's history into ``site`` unless it has visitors already (then None).

    Run by the ``demo`` command only; the store's own visitors are never mixed with made-up ones.
    """
    if db.session.scalar(select(Visitor.id).where(Visitor.site_id == site.id).limit(1)):
        return None
    started = time.perf_counter()
    now = utcnow()
    survey, wheel = _demo_campaigns(site)
    plan = _plan(survey, wheel, now)
    _top_up_pools(wheel, plan)  # commits
    visitor_ids = _insert_visitors(site, plan)
    history = _Fold(site, survey, wheel, plan, visitor_ids)
    history.events()
    history.spins()
    visitors = {
        v.id: v
        for v in db.session.scalars(
            select(Visitor).where(Visitor.site_id == site.id, Visitor.id.in_(history.staged))
        )
    }
    # Answers come on a shopper's first visit, before any order: stage them first, then the
    # orders a day at a time, so each stage change follows the one before.
    funnel.on_answers([visitors[i] for i in history.answered], now)
    _date_stage_changes(history.answered, now)
    for _, day in groupby(plan.orders, key=lambda planned: planned["at"].date()):
        day_orders = list(day)
        history.orders(day_orders)
        buyers = {visitor_ids[p["visitor_id"]]: p["at"] for p in day_orders}
        funnel.on_orders([visitors[i] for i in buyers], "order", now)
        _date_stage_changes(buyers, now)
    history.flush()
    _date_back(site, survey, wheel, plan)
    db.session.commit()
    site_config.invalidate(site.site_key)
    return SeededHistory(
        days=HISTORY_DAYS,
        visitors=len(plan.shoppers),
        survey_views=plan.survey_views,
        completed=plan.completed,
        spins=len(plan.spins),
        orders=len(plan.orders),
        customers=len({s.customer_id for s in plan.shoppers if s.customer_id}),
        duration_s=time.perf_counter() - started,
    )


def _demo_campaigns(site: Site) -> tuple[Campaign, Campaign]:
    """The demo's loyalty questionnaire and its reward wheel."""
    campaigns = db.session.scalars(select(Campaign).where(Campaign.site_id == site.id)).all()
    wheel = next(c for c in campaigns if c.kind == "wheel" and c.name == WHEEL_NAME)
    survey = next(c for c in campaigns if c.kind == "survey")
    return survey, wheel


# -- the plan: who came, what they answered, spun and bought ---------------------------------


def _plan(survey: Campaign, wheel: Campaign, now: datetime) -> _Plan:
    rng = random.Random(SEED)
    today = datetime.combine(now.date(), day_time(), UTC)
    plan = _Plan(start=today - timedelta(days=HISTORY_DAYS))
    # Everything happens before today: the same history, whatever the hour of the first run.
    end = today
    weights = [float(v.weight) or 1.0 for v in survey.variants]
    slices = wheel.variants[0].content["slices"]
    for number in range(VISITORS):
        # A little growth over the weeks, more visitors in the evening.
        day = min(int(HISTORY_DAYS * rng.random() ** 0.85), HISTORY_DAYS - 1)
        seconds = min(max(rng.gauss(19.5, 3.5), 6.0), 23.5) * 3600
        first_at = plan.start + timedelta(days=day, seconds=seconds)
        key = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        # Drawn here rather than by the campaign's hash (its seed differs in every database),
        # so that every first run writes the same history; in the same proportions.
        variant_index = rng.choices(range(len(weights)), weights)[0]
        variant_id = survey.variants[variant_index].id
        shopper = _Shopper(key, first_at, variant_index, first_at + timedelta(minutes=3))
        plan.shoppers.append(shopper)
        at = first_at + timedelta(seconds=2)
        completed = False
        if rng.random() < SHOWN_RATE:
            plan.survey_views += 1
            at, completed = _survey_visit(rng, plan, survey, shopper, variant_id, at)
            plan.completed += completed
        shopper.visited_cart = rng.random() < 0.25
        won = None
        if completed and rng.random() < 0.6:  # took the thank-you step's spin
            won = _wheel_visit(rng, plan, wheel, shopper, slices, at + timedelta(seconds=3), 0.92)
        elif shopper.visited_cart and rng.random() < 0.25:  # the wheel on leaving the cart
            won = _wheel_visit(rng, plan, wheel, shopper, slices, at + timedelta(minutes=2), 0.6)
        _purchases(rng, plan, shopper, number, won, end)
    plan.events.sort(key=lambda event: event["ts"])
    plan.spins.sort(key=lambda planned: planned["at"])
    plan.orders.sort(key=lambda planned: planned["at"])
    return plan


def _event(rng, plan, shopper, kind, campaign, variant_id, at, **data) -> None:
    plan.events.append(
        {
            "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "type": kind,
            "visitor_id": shopper.key,
            "campaign_id": campaign.id,
            "variant_id": variant_id,
            "ts": at,
            "data": data,
        }
    )


def _survey_visit(rng, plan, survey, shopper, variant_id, at) -> tuple[datetime, bool]:
    """The survey's events as the snippet sends them; the time it closed, whether completed."""
    _event(rng, plan, shopper, "impression", survey, variant_id, at)
    if rng.random() >= START_RATE[shopper.variant_index]:
        at += timedelta(seconds=rng.uniform(3, 25))
        if rng.random() < 0.8:  # else the visitor just left the page
            _event(rng, plan, shopper, "close", survey, variant_id, at)
        return at, False
    emotional = rng.choices(list(EMOTIONAL_WEIGHTS), list(EMOTIONAL_WEIGHTS.values()))[0]
    intentional = min(5, max(1, emotional + rng.choice((-2, -1, 0, 0, 0, 1))))
    if emotional >= 4 and intentional >= 4:
        action = rng.choices(("yes", "would", "no"), (45, 45, 10))[0]
    else:
        action = rng.choices(("yes", "would", "no"), (10, 40, 50))[0]
    # Low emotional scores skip the intentional question, as the questionnaire's rule says.
    steps = [("emotional", emotional)]
    if emotional > 2:
        steps.append(("intentional", intentional))
    steps.append(("action", action))
    finishes = rng.random() < FINISH_RATE[shopper.variant_index]
    answered = steps if finishes else steps[: rng.randint(1, len(steps) - 1)]
    for step_id, value in answered:
        _event(rng, plan, shopper, "step", survey, variant_id, at, step_id=step_id)
        at += timedelta(seconds=rng.uniform(3, 12))
        _event(rng, plan, shopper, "answer", survey, variant_id, at, step_id=step_id, value=value)
    shopper.emotional = emotional
    shopper.intentional = intentional if emotional > 2 and len(answered) > 1 else None
    if finishes:
        at += timedelta(seconds=1)
        _event(rng, plan, shopper, "complete", survey, variant_id, at)
    else:
        if len(answered) < len(steps):
            nxt = steps[len(answered)][0]
            _event(rng, plan, shopper, "step", survey, variant_id, at, step_id=nxt)
        at += timedelta(seconds=rng.uniform(5, 30))
        _event(rng, plan, shopper, "close", survey, variant_id, at)
    return at, finishes


def _wheel_visit(rng, plan, wheel, shopper, slices, at, spin_rate: float) -> dict | None:
    """The wheel's impression, the spin the server draws (or a close without one), and what the
    visitor did after: the spin's slice, or None."""
    variant_id = wheel.variants[0].id
    _event(rng, plan, shopper, "impression", wheel, variant_id, at)
    at += timedelta(seconds=rng.uniform(4, 15))
    if rng.random() >= spin_rate:
        _event(rng, plan, shopper, "close", wheel, variant_id, at)
        shopper.last_at = max(shopper.last_at, at)
        return None
    email = None
    if rng.random() < 0.4:
        email = f"shopper{len(plan.shoppers):04d}@example.com"
        shopper.email, shopper.consent = email, rng.random() < 0.6
    index = spins.choose_slice([float(s["weight"]) for s in slices], rng)
    planned = {"visitor_id": shopper.key, "at": at, "slice_index": index, "email": email}
    plan.spins.append(planned)
    at += timedelta(seconds=4)
    _event(rng, plan, shopper, "complete", wheel, variant_id, at)
    reward = slices[index].get("reward") or {}
    if reward.get("type") in ("pool", "code") and rng.random() < 0.8:
        at += timedelta(seconds=rng.uniform(2, 8))
        _event(rng, plan, shopper, "claim", wheel, variant_id, at)
    at += timedelta(seconds=rng.uniform(2, 10))
    _event(rng, plan, shopper, "close", wheel, variant_id, at)
    shopper.last_at = max(shopper.last_at, at)
    return {**planned, "reward": reward.get("type", "none"), "label": slices[index]["label"]}


def _purchases(rng, plan, shopper, number, won, end) -> None:
    """Orders: more likely after a won code and from loyal answerers, who also come back."""
    loyal = (shopper.emotional or 0) >= 4
    won_a_prize = bool(won) and won["reward"] != "none"
    chance = 0.03 + (0.03 if loyal else 0.0) + (0.2 if won_a_prize else 0.0)
    if rng.random() >= chance:
        return
    repeat = 0.18 + (0.22 if loyal and (shopper.intentional or 0) >= 4 else 0.0)
    if won_a_prize:
        at = won["at"] + timedelta(minutes=rng.uniform(5, 60 * 24 * 4))
    else:
        # Never before the first visit's popups are over: orders come after the impressions.
        at = shopper.first_at + timedelta(minutes=rng.uniform(5, 60 * 24 * 2))
    if at >= end:
        return
    shopper.customer_id = f"demo-customer-{number:05d}"
    shopper.visited_cart = True
    for count in range(1, MAX_ORDERS + 1):
        if at >= end:
            break
        items = [rng.choice(PRICES) for _ in range(rng.choices((1, 2, 3, 4), (40, 35, 17, 8))[0])]
        plan.orders.append(
            {
                "order_id": f"DEMO-{number:05d}-{count}",
                "visitor_id": shopper.key,
                "customer_id": shopper.customer_id,
                "at": at,
                "subtotal": sum(items, Decimal("0")),
                # The first order after a win mostly redeems the code the spin gave.
                "uses_prize": count == 1 and won_a_prize and rng.random() < 0.85,
            }
        )
        shopper.last_at = max(shopper.last_at, at)
        if rng.random() >= repeat:
            break
        at += timedelta(days=rng.uniform(3, 16))


# -- folding it as the services do -------------------------------------------------------------


class _Fold:
    """The plan folded into the rows the services keep, as they would have kept them live.

    ``events`` does what ingestion's ``apply_effects`` does to each new event (the rollups
    through ``metrics.IngestMetrics`` itself, which must see an event before the assignment
    changes), ``spins`` what the spin service does, ``orders`` what the orders service and its
    ``after_order_recorded`` do but the funnel (the caller runs the funnel's own batch calls);
    server-side conversions follow ``metrics.record_conversion``. ``flush`` writes the rollups.
    """

    def __init__(self, site, survey, wheel, plan: _Plan, visitor_ids: dict[str, int]):
        self.site, self.survey, self.wheel, self.plan = site, survey, wheel, plan
        self.visitor_ids = visitor_ids
        self.rollups = metrics.IngestMetrics([])  # a new store: no conversions yet
        self.conversions: dict[tuple[int, int, str], dict] = {}
        self.assignments: dict[tuple[int, int], SimpleNamespace] = {}
        #: Visitor id -> time of their last answer (their stage changes happen then).
        self.answered: dict[int, datetime] = {}
        self.spun: dict[int, dict] = {}  # visitor id -> spin row
        self.staged: set[int] = set()
        wheel_variant = wheel.variants[0].id
        entry_stage = site_config.get_site_config(site.site_key).entry_stage
        for shopper in plan.shoppers:
            visitor_id = visitor_ids[shopper.key]
            survey_variant = survey.variants[shopper.variant_index].id
            stratum = _stratum(shopper.key, entry_stage)
            # What decide stored on the first page: the survey's variant, and the wheel its
            # thank-you step offers, offered by its own targeting to visitors of the cart.
            self._assign(survey.id, visitor_id, survey_variant, shopper.first_at, False, stratum)
            self._assign(wheel.id, visitor_id, wheel_variant, shopper.first_at,
                         not shopper.visited_cart, stratum)  # fmt: skip
            if shopper.customer_id:
                self.staged.add(visitor_id)

    def _assign(self, campaign_id, visitor_id, variant_id, at, reward_only, stratum) -> None:
        self.assignments[(campaign_id, visitor_id)] = SimpleNamespace(
            campaign_id=campaign_id,
            visitor_id=visitor_id,
            variant_id=variant_id,
            holdout=False,
            sampled_out=False,
            reward_only=reward_only,
            impressions=0,
            first_impression_at=None,
            last_closed_at=None,
            completed_at=None,
            assigned_at=at,
            stratum=stratum,
            phase=1,
        )

    def events(self) -> None:
        """Store the browser's events; fold them into assignments, responses and rollups."""
        responses: dict[tuple[int, int], dict] = {}
        reached: Counter = Counter()
        rows = []
        for event in self.plan.events:
            visitor_id = self.visitor_ids[event["visitor_id"]]
            at = event["ts"]
            row = {
                "site_id": self.site.id,
                "event_uuid": event["id"],
                "type": event["type"],
                "visitor_id": visitor_id,
                "campaign_id": event["campaign_id"],
                "variant_id": event["variant_id"],
                "occurred_at": at,
                "received_at": at,
                "data": event["data"],
            }
            rows.append(row)
            key = (event["campaign_id"], visitor_id)
            assignment = self.assignments[key]
            self.rollups.fold(assignment, row)
            kind = event["type"]
            if kind == "impression":
                assignment.impressions += 1
                assignment.first_impression_at = assignment.first_impression_at or at
            elif kind == "close":
                assignment.last_closed_at = at
            elif kind in ("answer", "complete"):
                response = responses.setdefault(
                    key,
                    {
                        "campaign_id": event["campaign_id"],
                        "variant_id": event["variant_id"],
                        "visitor_id": visitor_id,
                        "answers": {},
                        "completed": False,
                        "started_at": at,
                        "updated_at": at,
                        "completed_at": None,
                    },
                )
                if kind == "complete":
                    assignment.completed_at = assignment.completed_at or at
                    response.update(completed=True, completed_at=response["completed_at"] or at)
                else:
                    step_id = event["data"]["step_id"]
                    if step_id not in response["answers"]:  # the step's reach, as the applier
                        step = (event["campaign_id"], event["variant_id"], step_id, 1)
                        reached[step] += 1
                    value = {"value": event["data"]["value"], "at": at.isoformat()}
                    response["answers"] = {**response["answers"], step_id: value}
                    response["updated_at"] = at
                    self.answered[visitor_id] = at
        self.staged.update(self.answered)
        insert_ignoring_conflicts(Event, rows, ["site_id", "event_uuid"])
        insert_ignoring_conflicts(
            Assignment, [vars(a) for a in self.assignments.values()], ["campaign_id", "visitor_id"]
        )
        insert_ignoring_conflicts(
            Response, list(responses.values()), ["campaign_id", "visitor_id", "round"]
        )
        add_to_counters(
            StepReach.__table__,
            ("campaign_id", "variant_id", "step_id", "phase"),
            "responses",
            reached,
        )

    def spins(self) -> None:
        """The spin service's steps with the history's draws: each slice's code (a pool's lowest
        free code, as ``spin.allocate_code`` takes it, or the slice's fixed code), the spin row,
        the ``spin`` and ``email_capture`` conversions."""
        variant = self.wheel.variants[0]
        slices = variant.content["slices"]
        free_codes = {}
        for pool_id in {s["reward"]["pool_id"] for s in slices if s["reward"]["type"] == "pool"}:
            free_codes[pool_id] = list(
                db.session.execute(
                    select(CouponCode.id, CouponCode.code)
                    .where(CouponCode.pool_id == pool_id, CouponCode.status == "available")
                    .order_by(CouponCode.id)
                )
            )
        taken = []
        for planned in self.plan.spins:
            visitor_id = self.visitor_ids[planned["visitor_id"]]
            at, index, email = planned["at"], planned["slice_index"], planned["email"]
            reward = slices[index].get("reward") or {"type": "none"}
            code = coupon_id = None
            if reward["type"] == "code":
                code = reward["code"]
            elif reward["type"] == "pool":
                if free_codes[reward["pool_id"]]:
                    coupon_id, code = free_codes[reward["pool_id"]].pop(0)
                    taken.append({"code_id": coupon_id, "taker": visitor_id, "taken_at": at})
                else:
                    index = spins.fallback_index(slices)
            self.spun[visitor_id] = {
                "campaign_id": self.wheel.id,
                "variant_id": variant.id,
                "visitor_id": visitor_id,
                "slice_index": index,
                "label": str(slices[index]["label"]),
                "code": code,
                "coupon_id": coupon_id,
                "email": spins.normalised_email(email) if email else None,
                "created_at": at,
            }
            assignment = self.assignments[(self.wheel.id, visitor_id)]
            self._convert(assignment, "spin", at)
            if email:
                self._convert(assignment, "email_capture", at)
        if taken:
            codes = CouponCode.__table__
            db.session.execute(
                update(codes)
                .where(codes.c.id == bindparam("code_id"))
                .values(
                    status="assigned",
                    visitor_id=bindparam("taker"),
                    campaign_id=self.wheel.id,
                    variant_id=variant.id,
                    assigned_at=bindparam("taken_at"),
                ),
                taken,
            )
        insert_ignoring_conflicts(Spin, list(self.spun.values()), ["campaign_id", "visitor_id"])

    def orders(self, planned_orders: list[dict]) -> None:
        """Store orders as the shop's back end reports them: a redeemed code each may use, the
        ``revenue`` of every campaign the buyer is in, the wheel's ``coupon_redemption``."""
        rows, redeemed = [], []
        for planned in planned_orders:
            visitor_id = self.visitor_ids[planned["visitor_id"]]
            spin_row = self.spun.get(visitor_id) if planned["uses_prize"] else None
            label = spin_row["label"] if spin_row else None
            subtotal = planned["subtotal"]
            discount = (subtotal * DISCOUNTS.get(label, Decimal("0"))).quantize(Decimal("0.01"))
            shipping = SHIPPING if subtotal < FREE_SHIPPING_FROM and label != "Free shipping" else 0
            reported = {
                "order_id": planned["order_id"],
                "customer_id": planned["customer_id"],
                "visitor_id": planned["visitor_id"],
                "total": subtotal - discount + shipping,
                "currency": CURRENCY,
                "created_at": planned["at"],
            }
            code = spin_row["code"] if spin_row else None
            if code:
                reported["coupon_code"] = code
            rows.append(
                {
                    "site_id": self.site.id,
                    "order_ref": planned["order_id"],
                    "customer_id": planned["customer_id"],
                    "visitor_id": visitor_id,
                    "total": reported["total"],
                    "currency": CURRENCY,
                    "coupon_code": code,
                    "coupon_id": spin_row["coupon_id"] if spin_row else None,
                    "payload_sha256": orders.payload_digest(reported),
                    "ordered_at": planned["at"],
                    "received_at": planned["at"],
                }
            )
            for campaign in (self.survey, self.wheel):
                assignment = self.assignments[(campaign.id, visitor_id)]
                self._convert(assignment, "revenue", planned["at"], float(reported["total"]))
                self._convert(assignment, "order", planned["at"])
            if code:
                wheel_assignment = self.assignments[(self.wheel.id, visitor_id)]
                self._convert(wheel_assignment, "coupon_redemption", planned["at"])
                if spin_row["coupon_id"]:
                    redeemed.append({"code_id": spin_row["coupon_id"], "at": planned["at"]})
        insert_ignoring_conflicts(Order, rows, ["site_id", "order_ref"])
        if redeemed:
            codes = CouponCode.__table__
            db.session.execute(
                update(codes)
                .where(codes.c.id == bindparam("code_id"))
                .values(status="redeemed", redeemed_at=bindparam("at")),
                redeemed,
            )

    def _convert(self, assignment, metric: str, at: datetime, value: float = 0.0) -> None:
        """A server-side conversion, by ``metrics.record_conversion``'s rules: once per visitor
        (revenue adds up), counted only from the visitor's first impression on."""
        exposed_at = assignment.first_impression_at
        if assignment.variant_id is None or (exposed_at is not None and at < exposed_at):
            return
        value = float(value) if metric in MEAN_METRICS else 0.0
        cell = (assignment.campaign_id, assignment.variant_id, 1, assignment.stratum)
        key = (assignment.campaign_id, assignment.visitor_id, metric)
        row = self.conversions.get(key)
        if row is None:
            self.conversions[key] = {
                "campaign_id": assignment.campaign_id,
                "visitor_id": assignment.visitor_id,
                "metric": metric,
                "phase": 1,
                "variant_id": assignment.variant_id,
                "value": value,
                "first_at": at,
            }
            if exposed_at is not None:
                self.rollups.deltas.add(
                    *cell, metric, at, conversions=1, value=value, value_squares=value**2
                )
        elif metric in MEAN_METRICS and value:
            before = row["value"]
            row["value"] = before + value
            if exposed_at is not None:
                squares = row["value"] ** 2 - before**2
                self.rollups.deltas.add(*cell, metric, at, value=value, value_squares=squares)

    def flush(self) -> None:
        insert_ignoring_conflicts(
            MetricConversion,
            list(self.conversions.values()),
            metrics.CONVERSION_KEY,
        )
        self.rollups.flush()


def _stratum(shopper_key: str, entry_stage: str | None) -> str:
    """A new shopper's stratum as decide would key it: a device and a traffic source drawn
    from the key's hash (the plan's random draws stay as they were), on their first page."""
    digest = hashlib.sha256(shopper_key.encode()).digest()
    device = "mobile" if digest[0] < 150 else "desktop"
    source = ("direct", "search", "search", "referral", "campaign")[digest[1] % 5]
    return strata.key("new", device, source, entry_stage or "-")


# -- writing it -------------------------------------------------------------------------------


def _top_up_pools(wheel: Campaign, plan: _Plan) -> None:
    """Generate the codes the history hands out, so the live demo keeps its pools' full stock."""
    slices = wheel.variants[0].content["slices"]
    wanted: Counter[int] = Counter()
    for planned in plan.spins:
        reward = slices[planned["slice_index"]].get("reward") or {}
        if reward.get("type") == "pool":
            wanted[reward["pool_id"]] += 1
    prefixes = {name: prefix for name, prefix, _ in DEMO_POOLS}
    for pool_id, count in sorted(wanted.items()):
        pool = db.session.get(CouponPool, pool_id)
        coupons.generate_codes(pool, count, prefixes.get(pool.name, ""))


def _insert_visitors(site: Site, plan: _Plan) -> dict[str, int]:
    """The shoppers, as decide created them and identify (buyers) and spins (e-mails) left them."""
    popup_end: dict[str, datetime] = {}
    for event in plan.events:
        if event["type"] in ("close", "complete"):
            popup_end[event["visitor_id"]] = event["ts"]
    rows = [
        {
            "site_id": site.id,
            "visitor_key": s.key,
            "customer_id": s.customer_id,
            "email": s.email if s.consent else None,
            "email_consent": s.consent,
            "attributes": {},
            "scores": {},
            "order_count": 0,
            "total_spent": 0,
            "last_popup_end_at": popup_end.get(s.key),
            "first_seen_at": s.first_at,
            "last_seen_at": s.last_at,
        }
        for s in plan.shoppers
    ]
    insert_ignoring_conflicts(Visitor, rows, ["site_id", "visitor_key"])
    return dict(
        db.session.execute(
            select(Visitor.visitor_key, Visitor.id).where(Visitor.site_id == site.id)
        ).all()
    )


_DATE_CHANGES = (
    update(StageChange.__table__)
    .where(
        StageChange.__table__.c.visitor_id == bindparam("changed_visitor"),
        StageChange.__table__.c.changed_at >= bindparam("since"),
    )
    .values(changed_at=bindparam("at"))
)


def _date_stage_changes(times: dict[int, datetime], since: datetime) -> None:
    """Date the stage changes the funnel just recorded "now" when their cause happened."""
    if times:
        db.session.execute(
            _DATE_CHANGES,
            [{"changed_visitor": v, "since": since, "at": at} for v, at in times.items()],
        )


def _date_back(site: Site, survey: Campaign, wheel: Campaign, plan: _Plan) -> None:
    """Date the site, its campaigns and pools from the history's first day, so the test has run
    as long as its history says (the promotion's minimum running days count from its start)."""
    for table in (CouponCode.__table__, CouponPool.__table__):
        db.session.execute(
            update(table).where(table.c.site_id == site.id).values(created_at=plan.start)
        )
    for campaign in (survey, wheel):
        campaign.created_at = campaign.started_at = plan.start
        for variant in campaign.variants:
            variant.created_at = plan.start
    site.created_at = plan.start
    db.session.flush()
