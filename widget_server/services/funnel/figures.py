"""Funnel figures for the admin API, computed with a few GROUP BY queries.

Definitions (docs/funnel.md repeats them):

* **customer** (site totals): the distinct buyers in the orders table, keyed by the order's
  ``customer_id``, else its visitor; orders with neither are ``unattributed`` (reported apart,
  in no customer figure).
* **per stage / per variant**: from each (unmerged) visitor's order count and total spent, which
  the funnel keeps in step with the orders attached to the visitor; a customer there is a visitor
  with at least one order.
* **repeat-customer rate** = customers with more than one order / customers × 100; **bought N
  times** = share of customers with exactly N orders (N = 1, 2, 3) or 4 and more, in %.
* **average order value** = revenue / orders; **revenue per customer** = revenue / customers.
* **CSAT** = share of respondents whose ``csat`` score (1-5 scale) is 4 or more, in %;
  **NPS** = % promoters (``nps`` score 9-10) − % detractors (0-6), over respondents with a score.
  A respondent's score is their dimension score (the mean of their latest answers).
* **conversion by week**: per ISO week (Monday, UTC) and stage, the stage changes into the stage
  (``entered``) and out of it to a later stage of the funnel (``advanced``), from the stage
  history; ``advanced_rate`` = advanced / entered × 100 (a flow ratio, not a cohort).
* **entry stage**: a visitor no answer, order or identify has staged yet (no stored stage, no
  scores, orders or attributes) is counted in the stage a visitor without facts meets, computed
  by one count in the per-stage query instead of a stored row per anonymous visitor.
* **share of visitors** per stage (and retired stage, and no stage): rounded by largest remainder
  so the shares add up to exactly 100.
"""

from datetime import datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace

from flask import current_app
from sqlalchemy import and_, case, delete, func, or_, select, type_coerce, union_all, update

from ...errors import NotFound
from ...extensions import db
from ...models import Assignment, Campaign, FunnelSnapshot, Order, StageChange, Visitor
from ...models.types import JSONType, utcnow
from ..platform.changes import site_changed
from ..platform.upsert import insert_ignoring_conflicts
from .rules import Facts, stage_for
from .stages import site_stages


def _count_if(condition):
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _visitor_aggregates() -> list:
    """Counts and sums over visitors, CSAT and NPS included."""
    csat = Visitor.scores["csat"].as_float()
    nps = Visitor.scores["nps"].as_float()
    orders = Visitor.order_count
    return [
        func.count().label("visitors"),
        _count_if(orders > 0).label("customers"),
        _count_if(orders == 1).label("bought_1"),
        _count_if(orders == 2).label("bought_2"),
        _count_if(orders == 3).label("bought_3"),
        _count_if(orders >= 4).label("bought_4_plus"),
        func.coalesce(func.sum(orders), 0).label("orders"),
        func.coalesce(func.sum(Visitor.total_spent), 0).label("revenue"),
        func.count(csat).label("csat_respondents"),
        _count_if(csat >= 4).label("csat_satisfied"),
        func.count(nps).label("nps_respondents"),
        _count_if(nps >= 9).label("promoters"),
        _count_if(nps <= 6).label("detractors"),
    ]


def _pct(part, whole) -> float | None:
    return round(100.0 * float(part) / float(whole), 2) if whole else None


def _ratio(part, whole) -> float | None:
    return round(float(part) / float(whole), 2) if whole else None


def customer_figures(customers, bought: list, orders, revenue) -> dict:
    """Repeat-customer figures from counts; ``bought`` = customers with 1, 2, 3, 4+ orders."""
    repeat = sum(bought[1:])
    return {
        "customers": int(customers),
        "repeat_customers": int(repeat),
        "repeat_customer_rate": _pct(repeat, customers),
        "bought_times": {
            label: _pct(count, customers)
            for label, count in zip(("1", "2", "3", "4+"), bought, strict=True)
        },
        "orders": int(orders),
        "revenue": str(Decimal(revenue or 0).quantize(Decimal("0.01"))),
        "average_order_value": _ratio(revenue, orders),
        "revenue_per_customer": _ratio(revenue, customers),
    }


def _visitor_row(row) -> dict:
    bought = [row.bought_1, row.bought_2, row.bought_3, row.bought_4_plus]
    return {
        "visitors": int(row.visitors),
        **customer_figures(row.customers, bought, row.orders, row.revenue),
        "csat": _pct(row.csat_satisfied, row.csat_respondents),
        "csat_respondents": int(row.csat_respondents),
        "nps": (
            round(
                _pct(row.promoters, row.nps_respondents)
                - _pct(row.detractors, row.nps_respondents),
                2,
            )
            if row.nps_respondents
            else None
        ),
        "nps_respondents": int(row.nps_respondents),
    }


def _empty_json(column):
    return or_(column.is_(None), column == type_coerce({}, JSONType))


#: A visitor nothing has staged yet: no stage and no fact a rule could read (the snippet's
#: anonymous visitors). Restaging stores a stage on their first answer, order or identify.
_NOT_YET_STAGED = and_(
    Visitor.stage.is_(None),
    func.coalesce(Visitor.order_count, 0) == 0,
    _empty_json(Visitor.scores),
    _empty_json(Visitor.attributes),
)


def shares_pct(counts: list[int], decimals: int = 2) -> list[float | None]:
    """Each count's share of their sum in %, rounded so that the shares add up to exactly 100.

    Largest remainder: every share is rounded down to ``decimals``, then the units still missing
    go to the largest remainders (ties: the earlier count). None for all when the sum is 0.
    """
    total = sum(counts)
    if not total:
        return [None] * len(counts)
    scale = 100 * 10**decimals
    floors = [count * scale // total for count in counts]
    by_remainder = sorted(range(len(counts)), key=lambda i: (-(counts[i] * scale % total), i))
    for i in by_remainder[: scale - sum(floors)]:
        floors[i] += 1
    return [round(units / 10**decimals, decimals) for units in floors]


def funnel_figures(site_id: int, campaign_id: int | None = None, weeks: int = 12) -> dict:
    """Everything ``GET sites/<id>/funnel`` shows, in four aggregate queries.

    Visitors not yet staged are counted in the entry stage (the one a visitor without facts
    meets) from one conditional count of the per-stage query, so an anonymous visitor costs no
    write; ``unstaged_visitors`` are those whose facts meet no stage's rule.
    """
    stages = site_stages(site_id)
    per_stage_rows_all = db.session.execute(
        select(
            Visitor.stage,
            _count_if(_NOT_YET_STAGED).label("not_yet_staged"),
            *_visitor_aggregates(),
        )
        .where(Visitor.site_id == site_id, Visitor.merged_into_id.is_(None))
        .group_by(Visitor.stage)
    ).all()
    per_stage_rows = {row.stage: row for row in per_stage_rows_all}
    no_stage = per_stage_rows.pop(None, _EmptyRow)
    entry_stage = stage_for(stages, Facts())
    not_yet_staged = int(getattr(no_stage, "not_yet_staged", 0)) if entry_stage else 0
    if not_yet_staged:
        # They have no orders, scores or attributes: they add visitors and nothing else.
        per_stage_rows[entry_stage] = _summed(
            [per_stage_rows.get(entry_stage, _EmptyRow), _visitors_only(not_yet_staged)]
        )
        no_stage = _summed([no_stage, _visitors_only(-not_yet_staged)])
    per_stage = []
    for stage in stages:
        row = per_stage_rows.pop(stage.key, _EmptyRow)
        per_stage.append({"key": stage.key, "name": stage.name, **_visitor_row(row)})
    retired = [{"key": key, **_visitor_row(row)} for key, row in per_stage_rows.items()]
    unstaged_visitors = int(no_stage.visitors)
    shares = shares_pct([s["visitors"] for s in per_stage + retired] + [unstaged_visitors])
    for figures, share in zip(per_stage + retired, shares, strict=False):
        figures["share_of_visitors"] = share
    overall_visitors = _visitor_row(_summed(list(per_stage_rows_all)))
    return {
        "site_id": site_id,
        "stages": per_stage,
        "entry_stage": entry_stage,
        "not_yet_staged_visitors": not_yet_staged,
        "unstaged_visitors": unstaged_visitors,
        "unstaged_share_of_visitors": shares[-1],
        "retired_stages": retired,
        "totals": {
            **_order_totals(site_id),
            "visitors": overall_visitors["visitors"],
            "csat": overall_visitors["csat"],
            "csat_respondents": overall_visitors["csat_respondents"],
            "nps": overall_visitors["nps"],
            "nps_respondents": overall_visitors["nps_respondents"],
        },
        "conversion_by_week": conversion_by_week(site_id, [s.key for s in stages], weeks),
        "per_variant": per_variant(site_id, campaign_id) if campaign_id else None,
    }


_COUNTS = (
    "visitors",
    "customers",
    "bought_1",
    "bought_2",
    "bought_3",
    "bought_4_plus",
    "orders",
    "revenue",
    "csat_respondents",
    "csat_satisfied",
    "nps_respondents",
    "promoters",
    "detractors",
)


def _summed(rows) -> SimpleNamespace:
    """The site-wide row: every aggregate above is a count or a sum, so rows add up."""
    return SimpleNamespace(**{name: sum(getattr(r, name) for r in rows) for name in _COUNTS})


_EmptyRow = _summed([])


def _visitors_only(visitors: int) -> SimpleNamespace:
    """A row of ``visitors`` visitors without orders or scores (negative: to take them out)."""
    return SimpleNamespace(**{**vars(_EmptyRow), "visitors": visitors})


def _order_totals(site_id: int) -> dict:
    """Site-wide customer figures from the orders table in one statement.

    Buyers with a customer id and buyers known by visitor only are grouped apart (UNION ALL), so
    the first group streams from the ``(site_id, customer_id) INCLUDE (total)`` index on
    PostgreSQL instead of hashing a computed key over every order.
    """
    by_customer = (
        select(func.count().label("n"), func.sum(Order.total).label("revenue"))
        .where(Order.site_id == site_id, Order.customer_id.is_not(None))
        .group_by(Order.customer_id)
    )
    by_visitor = (
        select(func.count().label("n"), func.sum(Order.total).label("revenue"))
        .where(Order.site_id == site_id, Order.customer_id.is_(None), Order.visitor_id.is_not(None))
        .group_by(Order.visitor_id)
    )
    per_customer = union_all(by_customer, by_visitor).subquery()
    n = per_customer.c.n
    row = db.session.execute(
        select(
            func.count(),
            _count_if(n == 1),
            _count_if(n == 2),
            _count_if(n == 3),
            _count_if(n >= 4),
            func.coalesce(func.sum(n), 0),
            func.coalesce(func.sum(per_customer.c.revenue), 0),
        )
    ).one()
    customers, b1, b2, b3, b4, orders, revenue = row
    guest_orders, guest_revenue = db.session.execute(
        select(func.count(), func.coalesce(func.sum(Order.total), 0)).where(
            Order.site_id == site_id, Order.customer_id.is_(None), Order.visitor_id.is_(None)
        )
    ).one()
    return {
        **customer_figures(customers, [b1, b2, b3, b4], orders, revenue),
        "unattributed_orders": int(guest_orders),
        "unattributed_revenue": str(Decimal(guest_revenue or 0).quantize(Decimal("0.01"))),
    }


def _week_start(column):
    """Monday (UTC) of the row's week; formatted in Python, not per row in SQL."""
    if db.session.get_bind().dialect.name == "postgresql":
        return func.date_trunc("week", func.timezone("UTC", column))
    return func.date(column, "weekday 0", "-6 days")


def _week_label(value) -> str:
    return value if isinstance(value, str) else value.date().isoformat()


def conversion_by_week(site_id: int, order: list[str], weeks: int) -> list[dict]:
    """Per week and stage: changes into it, changes out of it to a later stage, their ratio."""
    since = utcnow() - timedelta(weeks=weeks)
    week = _week_start(StageChange.changed_at)
    rows = db.session.execute(
        select(week, StageChange.from_stage, StageChange.to_stage, func.count())
        .where(StageChange.site_id == site_id, StageChange.changed_at >= since)
        .group_by(week, StageChange.from_stage, StageChange.to_stage)
    ).all()
    position = {key: index for index, key in enumerate(order)}
    table: dict[tuple[str, str], dict] = {}
    for week_value, from_stage, to_stage, count in rows:
        week_start = _week_label(week_value)
        if to_stage is not None:
            table.setdefault((week_start, to_stage), {"entered": 0, "advanced": 0})
            table[(week_start, to_stage)]["entered"] += count
        if (
            from_stage in position
            and to_stage in position
            and position[to_stage] > position[from_stage]
        ):
            table.setdefault((week_start, from_stage), {"entered": 0, "advanced": 0})
            table[(week_start, from_stage)]["advanced"] += count
    return [
        {
            "week": week_start,
            "stage": stage,
            "entered": cell["entered"],
            "advanced": cell["advanced"],
            "advanced_rate": _pct(cell["advanced"], cell["entered"]),
        }
        for (week_start, stage), cell in sorted(
            table.items(), key=lambda item: (item[0][0], position.get(item[0][1], len(order)))
        )
    ]


def per_variant(site_id: int, campaign_id: int) -> list[dict]:
    """Funnel figures of the visitors assigned to each variant (or the holdout) of a campaign.

    :raise NotFound: the campaign is not this site's.
    """
    campaign = db.session.get(Campaign, campaign_id)
    if campaign is None or campaign.site_id != site_id:
        raise NotFound(
            f"No campaign {campaign_id} on this site.",
            {"campaign_id": ["No such campaign on this site."]},
        )
    names = {v.id: v.name for v in campaign.variants}
    rows = db.session.execute(
        select(Assignment.variant_id, *_visitor_aggregates())
        .join(Visitor, Visitor.id == Assignment.visitor_id)
        .where(
            Assignment.campaign_id == campaign_id,
            Assignment.sampled_out.is_(False),
            Visitor.merged_into_id.is_(None),
        )
        .group_by(Assignment.variant_id)
        .order_by(Assignment.variant_id)
    ).all()
    return [
        {
            "variant_id": row.variant_id,
            "name": names.get(row.variant_id, "holdout" if row.variant_id is None else None),
            **_visitor_row(row),
        }
        for row in rows
    ]


class FigureSnapshots:
    """The latest figures per (site, campaign, weeks), shared by every process in the database.

    The figures scan every visitor, order and recent stage change of a site (about a second on
    100,000 visitors and 300,000 orders), so the admin API answers from the last computation:
    the first call computes and waits; later calls answer at once and, once the snapshot is
    older than ``FUNNEL_FIGURES_TTL_S``, ask for a refresh, which the worker's
    ``funnel-figures`` job computes (:meth:`refresh_one`); the next call sees it. A snapshot's
    age is read from its ``computed_at`` (the time its computation started, in the body too), so
    the age the API and the admin page show is the one the refresh goes by. Changing the site's
    stages drops its snapshots (the stage list itself changed).
    """

    def get(self, site_id: int, campaign_id: int | None, weeks: int) -> dict:
        ttl = current_app.config["FUNNEL_FIGURES_TTL_S"]
        if ttl <= 0:
            return _computed(site_id, campaign_id, weeks)[1]
        key = (site_id, campaign_id or 0, weeks)
        found = db.session.get(FunnelSnapshot, key, populate_existing=True)
        if found is None:
            computed_at, body = _computed(site_id, campaign_id, weeks)
            self._store(key, computed_at, body)
            return body
        age_s = (utcnow() - found.computed_at).total_seconds()
        if (age_s > ttl or age_s < 0) and found.refresh_requested_at is None:
            # Older than the TTL, or the clock was set back: the worker recomputes it.
            found.refresh_requested_at = utcnow()
            db.session.commit()
        return found.body

    def drop_site(self, site_id: int) -> None:
        db.session.execute(delete(FunnelSnapshot).where(FunnelSnapshot.site_id == site_id))
        db.session.commit()

    def refresh_one(self) -> int:
        """Recompute the longest-waiting snapshot a reader found stale; 1 if there was one."""
        query = (
            select(FunnelSnapshot)
            .where(FunnelSnapshot.refresh_requested_at.is_not(None))
            .order_by(FunnelSnapshot.refresh_requested_at)
            .limit(1)
        )
        if db.session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)  # two workers never compute one
        found = db.session.scalar(query)
        if found is None:
            db.session.commit()
            return 0
        try:
            computed_at, body = _computed(found.site_id, found.campaign_id or None, found.weeks)
        except NotFound:  # the campaign left the site: the next call computes and answers 404
            db.session.delete(found)
        else:
            found.computed_at, found.body, found.refresh_requested_at = computed_at, body, None
        db.session.commit()
        return 1

    def wait(self) -> None:
        """Recompute every requested snapshot now (tests; the worker does it continuously)."""
        while self.refresh_one():
            pass

    @staticmethod
    def _store(key: tuple, computed_at: datetime, body: dict) -> None:
        site_id, campaign_id, weeks = key
        row = {
            "site_id": site_id,
            "campaign_id": campaign_id,
            "weeks": weeks,
            "computed_at": computed_at,
            "refresh_requested_at": None,
            "body": body,
        }
        if not insert_ignoring_conflicts(
            FunnelSnapshot,
            [row],
            ["site_id", "campaign_id", "weeks"],
            returning=[FunnelSnapshot.site_id],
        ):
            db.session.execute(
                update(FunnelSnapshot)
                .where(
                    FunnelSnapshot.site_id == site_id,
                    FunnelSnapshot.campaign_id == campaign_id,
                    FunnelSnapshot.weeks == weeks,
                )
                .values(computed_at=computed_at, body=body, refresh_requested_at=None)
            )
        db.session.commit()


def _computed(site_id: int, campaign_id: int | None, weeks: int) -> tuple[datetime, dict]:
    """The figures with the time their computation started (they show the data of then or
    later)."""
    computed_at = utcnow()
    body = {**funnel_figures(site_id, campaign_id, weeks), "computed_at": computed_at.isoformat()}
    return computed_at, body


def figures_age_s(body: dict) -> float:
    """Seconds since the figures in ``body`` were computed, by the clock the snapshots use."""
    return (utcnow() - datetime.fromisoformat(body["computed_at"])).total_seconds()


_SNAPSHOTS = FigureSnapshots()


def snapshots() -> FigureSnapshots:
    """The figure snapshots (they live in the database: the object holds no state)."""
    return _SNAPSHOTS


@site_changed.connect
def _drop_changed_site(sender, site_id: int, **_) -> None:
    snapshots().drop_site(site_id)


def cached_funnel_figures(site_id: int, campaign_id: int | None = None, weeks: int = 12) -> dict:
    """:func:`funnel_figures` from the latest snapshot (see :class:`FigureSnapshots`).

    :raise NotFound: the campaign is not this site's.
    """
    return snapshots().get(site_id, campaign_id, weeks)
