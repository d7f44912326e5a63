"""Per-variant exposures and conversions, kept as daily rollup rows updated on ingest.

Every metric has the same shape: the denominator is the visitors who had an impression
of the variant, and each visitor converts at most once. Ingestion knows "first time" from the
assignment it already holds locked (``first_impression_at``, ``completed_at``) and from
:class:`~widget_server.models.MetricConversion` rows (one per visitor, campaign and metric), so it
adds deltas to ``variant_metrics`` without reading events back. Reading results sums a campaign's
rows (variants x metrics x days): its cost does not grow with the number of events.

A conversion reported before the visitor's impression is ingested (batches from the browser and
orders from the shop arrive in any order) is kept and counted when the impression arrives.
Visitors count under the variant of their assignment (intention to treat); holdout and
sampled-out visitors count nowhere.
"""

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite

from ...extensions import db
from ...models import EXPOSURE, TEASER_EVENT_TYPES, Assignment, MetricConversion, VariantMetric
from ...vocabulary import MEAN_METRICS, METRICS
from ..platform.upsert import insert_ignoring_conflicts

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
#: Every figure kept per variant: the A/B metrics, and the teaser's visitors who saw its tab
#: (``teaser_shown``) and who reopened the popup with it (``teaser_open``), which no test judges.
FIGURES = (*METRICS, *TEASER_EVENT_TYPES)


@dataclass(frozen=True)
class VariantFigures:
    """One variant's totals on one metric: the sufficient statistics the tests need."""

    variant_id: int
    visitors: int
    conversions: int
    value_sum: float
    value_sum_squares: float


@dataclass(frozen=True)
class DailyPoint:
    """One variant's figures on one day (not cumulative)."""

    day: date
    variant_id: int
    visitors: int
    conversions: int
    value_sum: float


def event_metrics(event: dict) -> tuple[str, ...]:
    """The metrics (other than completion) that a browser event converts.

    ``spin`` and ``claim`` are their own metrics; an e-mail is captured by any campaign event
    carrying ``data.email`` (the wheel's capture form) or by an ``answer`` whose value is an
    e-mail address (a survey's ``email`` step).
    """
    kind = event["type"]
    data = event.get("data") or {}
    found = []
    if kind in ("spin", "claim"):
        found.append(kind)
    email = data.get("email")
    if email is None and kind == "answer":
        email = data.get("value")
    if isinstance(email, str) and _EMAIL.fullmatch(email.strip()):
        found.append("email_capture")
    return tuple(found)


class _Deltas:
    """Increments to ``variant_metrics`` rows, summed per row and written in one statement."""

    def __init__(self):
        self.rows: dict[tuple, list] = defaultdict(lambda: [0, 0, 0.0, 0.0])

    def add(self, campaign_id, variant_id, metric, at: datetime, visitors=0, conversions=0,
            value=0.0, value_squares=0.0):  # fmt: skip
        row = self.rows[(campaign_id, variant_id, metric, at.date())]
        row[0] += visitors
        row[1] += conversions
        row[2] += value
        row[3] += value_squares

    def flush(self) -> None:
        """Upsert all increments; rows in key order so concurrent batches cannot deadlock."""
        if not self.rows:
            return
        values = [
            {
                "campaign_id": c,
                "variant_id": v,
                "metric": m,
                "day": d,
                "visitors": row[0],
                "conversions": row[1],
                "value_sum": row[2],
                "value_sum_squares": row[3],
            }
            for (c, v, m, d), row in sorted(self.rows.items())
        ]
        db.session.execute(_increment_statement(db.session.get_bind().dialect.name), values)
        self.rows.clear()


@cache
def _increment_statement(dialect: str):
    """``INSERT ... ON CONFLICT DO UPDATE SET n = n + excluded.n``, built once per dialect: the
    rows travel as parameters (executemany), so ingestion compiles nothing per batch."""
    table = VariantMetric.__table__
    statement = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
    return statement.on_conflict_do_update(
        index_elements=["campaign_id", "variant_id", "metric", "day"],
        set_={
            name: table.c[name] + statement.excluded[name]
            for name in ("visitors", "conversions", "value_sum", "value_sum_squares")
        },
    )


class IngestMetrics:
    """Folds one ingested batch into the rollups; ingestion calls :meth:`fold` per fresh event.

    ``fold`` must see each event *before* ingestion updates the assignment, so that it can tell a
    first impression or a first completion from a repeat.
    """

    def __init__(self, assignments: Iterable[Assignment]):
        by_key = {(a.campaign_id, a.visitor_id): a for a in assignments}
        self.deltas = _Deltas()
        self.converted: dict[tuple[int, int], dict[str, MetricConversion]] = defaultdict(dict)
        self.new_conversions: list[dict] = []
        if by_key:
            rows = db.session.scalars(
                select(MetricConversion).where(
                    MetricConversion.visitor_id.in_({v for _, v in by_key}),
                    MetricConversion.campaign_id.in_({c for c, _ in by_key}),
                )
            )
            for row in rows:
                self.converted[(row.campaign_id, row.visitor_id)][row.metric] = row

    def fold(self, assignment: Assignment, event: dict) -> None:
        if assignment.variant_id is None or assignment.sampled_out:
            return
        at = event["occurred_at"]
        exposed = assignment.first_impression_at is not None
        kind = event["type"]
        if kind in TEASER_EVENT_TYPES:
            if exposed and assignment.last_closed_at and assignment.last_closed_at <= at:
                self._first(assignment, kind, at, exposed)
            return
        if kind == "impression" and not exposed:
            self._exposed(assignment, at)
        elif kind == "complete" and assignment.completed_at is None and exposed:
            self.deltas.add(*self._cell(assignment), "completion", at, conversions=1)
        for metric in event_metrics(event):
            self._first(assignment, metric, at, exposed)

    def _first(self, assignment: Assignment, metric: str, at: datetime, exposed: bool) -> None:
        """Count the visitor on ``metric`` the first time only (kept until exposed).

        A teaser's figure is counted only after the visitor was shown the popup and closed it
        (the only way the snippet draws the tab): a forged ``teaser_open`` counts nowhere.
        """
        key = (assignment.campaign_id, assignment.visitor_id)
        if metric in self.converted[key]:
            return
        self.converted[key][metric] = MetricConversion(metric=metric, value=0.0, first_at=at)
        self.new_conversions.append(
            {
                "campaign_id": assignment.campaign_id,
                "visitor_id": assignment.visitor_id,
                "metric": metric,
                "variant_id": assignment.variant_id,
                "value": 0.0,
                "first_at": at,
            }
        )
        if exposed:
            self.deltas.add(*self._cell(assignment), metric, at, conversions=1)

    def _exposed(self, assignment: Assignment, at: datetime) -> None:
        """A first impression: count the visitor, and any conversion that arrived before it."""
        cell = self._cell(assignment)
        self.deltas.add(*cell, EXPOSURE, at, visitors=1)
        if assignment.completed_at is not None:
            self.deltas.add(*cell, "completion", at, conversions=1)
        for metric, row in self.converted[(assignment.campaign_id, assignment.visitor_id)].items():
            value = row.value or 0.0
            self.deltas.add(*cell, metric, at, conversions=1, value=value, value_squares=value**2)

    @staticmethod
    def _cell(assignment: Assignment) -> tuple[int, int]:
        return assignment.campaign_id, assignment.variant_id

    def flush(self) -> None:
        insert_ignoring_conflicts(
            MetricConversion, self.new_conversions, ["campaign_id", "visitor_id", "metric"]
        )
        self.deltas.flush()


def record_conversion(
    campaign_id: int,
    visitor_id: int,
    metric: str,
    at: datetime,
    value: float = 0.0,
    variant_id: int | None = None,
) -> bool:
    """Count a conversion reported by the server side (an order, a redeemed coupon, a spin).

    The visitor counts under the variant of their assignment (``variant_id`` is only a check for
    the caller's own bookkeeping and is otherwise ignored). A 0/1 metric counts once per visitor;
    ``revenue`` adds ``value`` to the visitor's total (the sum and the sum of squares per visitor
    are kept exact). A conversion dated before the visitor's first impression is not counted; one
    arriving before the impression is ingested is kept and counted when the impression arrives.
    Does not commit: it joins the caller's transaction. Returns whether anything was counted or
    kept.

    :raise ValueError: unknown metric, or a negative value.
    """
    if metric not in METRICS or metric == "completion":
        raise ValueError(f"metric must be one of {METRICS[1:]}, not {metric!r}")
    if value < 0:
        raise ValueError(f"value must be 0 or more, not {value!r}")
    assignment = db.session.scalar(
        select(Assignment)
        .where(Assignment.campaign_id == campaign_id, Assignment.visitor_id == visitor_id)
        .with_for_update()
    )
    if assignment is None or assignment.variant_id is None or assignment.sampled_out:
        return False
    exposed_at = assignment.first_impression_at
    if exposed_at is not None and at < exposed_at:
        return False
    if metric not in MEAN_METRICS:
        counted = record_first_conversions(
            campaign_id, visitor_id, assignment.variant_id, exposed_at, (metric,), at
        )
        return bool(counted)
    value = float(value)
    row = db.session.get(MetricConversion, (campaign_id, visitor_id, metric), with_for_update=True)
    deltas = _Deltas()
    cell = (campaign_id, assignment.variant_id)
    if row is None:
        db.session.add(
            MetricConversion(
                campaign_id=campaign_id,
                visitor_id=visitor_id,
                metric=metric,
                variant_id=assignment.variant_id,
                value=value,
                first_at=at,
            )
        )
        if exposed_at is not None:
            deltas.add(*cell, metric, at, conversions=1, value=value, value_squares=value**2)
    elif value:
        before = row.value or 0.0
        row.value = before + value
        if exposed_at is not None:
            squares = row.value**2 - before**2
            deltas.add(*cell, metric, at, value=value, value_squares=squares)
    else:
        return False
    db.session.flush()
    deltas.flush()
    return True


def record_first_conversions(
    campaign_id: int,
    visitor_id: int,
    variant_id: int,
    exposed_at: datetime | None,
    metrics: Iterable[str],
    at: datetime,
) -> tuple[str, ...]:
    """Count 0/1 conversions of a visitor assigned to ``variant_id``: each metric once, in one
    statement (insert-ignore); counted in the rollups when the visitor was already exposed, else
    kept for the impression to count. Returns the metrics that were new.

    The caller holds the assignment locked (``FOR UPDATE``; on SQLite the writer lock) and read
    ``exposed_at`` under that lock, so an impression applied meanwhile cannot miss them.
    """
    rows = [
        {
            "campaign_id": campaign_id,
            "visitor_id": visitor_id,
            "metric": metric,
            "variant_id": variant_id,
            "value": 0.0,
            "first_at": at,
        }
        for metric in metrics
    ]
    new = insert_ignoring_conflicts(
        MetricConversion,
        rows,
        ["campaign_id", "visitor_id", "metric"],
        returning=(MetricConversion.__table__.c.metric,),
    )
    counted = tuple(row.metric for row in new)
    if exposed_at is not None and counted:
        deltas = _Deltas()
        for metric in counted:
            deltas.add(campaign_id, variant_id, metric, at, conversions=1)
        deltas.flush()
    return counted


def record_order(visitor_id: int, total: float, at: datetime, coupon_id: int | None = None) -> int:
    """Fold one new order into the results of every campaign the visitor is assigned to.

    ``revenue`` gains ``total`` in each of the visitor's campaigns; ``coupon_redemption`` counts
    in the campaign whose wheel handed out ``coupon_id``. Call it once per new order (orders are
    idempotent by id upstream). Returns how many campaign figures changed.
    """
    from ...models import CouponCode

    changed = 0
    campaign_ids = db.session.scalars(
        select(Assignment.campaign_id).where(
            Assignment.visitor_id == visitor_id, Assignment.variant_id.is_not(None)
        )
    ).all()
    for campaign_id in sorted(campaign_ids):
        changed += record_conversion(campaign_id, visitor_id, "revenue", at, value=float(total))
    if coupon_id is not None:
        coupon = db.session.get(CouponCode, coupon_id)
        if coupon is not None and coupon.campaign_id is not None:
            owner = coupon.visitor_id or visitor_id
            changed += record_conversion(coupon.campaign_id, owner, "coupon_redemption", at)
    return changed


def figures(campaign_ids: Iterable[int]) -> dict[int, dict[str, dict[int, VariantFigures]]]:
    """Totals per campaign, metric and variant, in one grouped query over the rollups.

    Exposure rows give every metric its ``visitors``; a variant with none reads as zeros.
    """
    campaign_ids = list(campaign_ids)
    if not campaign_ids:
        return {}
    rows = db.session.execute(
        select(
            VariantMetric.campaign_id,
            VariantMetric.variant_id,
            VariantMetric.metric,
            func.sum(VariantMetric.visitors),
            func.sum(VariantMetric.conversions),
            func.sum(VariantMetric.value_sum),
            func.sum(VariantMetric.value_sum_squares),
        )
        .where(VariantMetric.campaign_id.in_(campaign_ids))
        .group_by(VariantMetric.campaign_id, VariantMetric.variant_id, VariantMetric.metric)
    ).all()
    return _totals(campaign_ids, rows)


def _totals(campaign_ids: list[int], rows) -> dict[int, dict[str, dict[int, VariantFigures]]]:
    """``(campaign, variant, metric, visitors, conversions, sum, squares)`` sums as figures."""
    visitors: dict[tuple[int, int], int] = defaultdict(int)
    converted: dict[tuple[int, int, str], tuple] = {}
    for campaign_id, variant_id, metric, n, conversions, total, squares in rows:
        if metric == EXPOSURE:
            visitors[(campaign_id, variant_id)] = int(n or 0)
        else:
            converted[(campaign_id, variant_id, metric)] = (
                int(conversions or 0),
                float(total or 0.0),
                float(squares or 0.0),
            )
    result: dict[int, dict[str, dict[int, VariantFigures]]] = {}
    # Grouped per campaign first: a round reads 1,000 campaigns, so no campaign x variant loop.
    variants_of: dict[int, set[int]] = defaultdict(set)
    for c, v in visitors:
        variants_of[c].add(v)
    for c, v, _ in converted:
        variants_of[c].add(v)
    for campaign_id in campaign_ids:
        per_metric = result.setdefault(campaign_id, {})
        for metric in FIGURES:
            per_metric[metric] = {}
        c = campaign_id
        for v in sorted(variants_of.get(campaign_id, ())):
            for metric in FIGURES:
                conversions, total, squares = converted.get((c, v, metric), (0, 0.0, 0.0))
                if metric not in MEAN_METRICS:
                    total = squares = float(conversions)
                per_metric[metric][v] = VariantFigures(
                    v, visitors.get((c, v), 0), conversions, total, squares
                )
    return result


def campaign_figures(campaign_id: int, metric: str) -> dict[int, VariantFigures]:
    """One campaign's totals per variant on one metric."""
    return figures([campaign_id])[campaign_id][metric]


def figures_and_series(
    campaign_id: int, metric: str
) -> tuple[dict[str, dict[int, VariantFigures]], list[DailyPoint]]:
    """One campaign's totals (as :func:`figures`) and its daily points on ``metric`` (as
    :func:`daily_series`), from one read of its rollup rows (variants x metrics x days).
    """
    rows = db.session.execute(
        select(
            VariantMetric.day,
            VariantMetric.variant_id,
            VariantMetric.metric,
            VariantMetric.visitors,
            VariantMetric.conversions,
            VariantMetric.value_sum,
            VariantMetric.value_sum_squares,
        ).where(VariantMetric.campaign_id == campaign_id)
    ).all()
    sums: dict[tuple[int, str], list] = defaultdict(lambda: [0, 0, 0.0, 0.0])
    for _, variant_id, row_metric, *values in rows:
        total = sums[(variant_id, row_metric)]
        for i, value in enumerate(values):
            total[i] += value or 0
    totals = _totals([campaign_id], [(campaign_id, v, m, *t) for (v, m), t in sums.items()])
    series = _points(
        (day, variant_id, row_metric, visitors, conversions, value_sum)
        for day, variant_id, row_metric, visitors, conversions, value_sum, _ in rows
        if row_metric in (EXPOSURE, metric)
    )
    return totals[campaign_id], series


def daily_series(campaign_id: int, metric: str) -> list[DailyPoint]:
    """Daily (not cumulative) visitors and conversions per variant, oldest day first."""
    return figures_and_series(campaign_id, metric)[1]


def _points(rows) -> list[DailyPoint]:
    """``(day, variant, metric, visitors, conversions, value_sum)`` rows as daily points."""
    points: dict[tuple[date, int], list] = {}
    for day, variant_id, row_metric, visitors, conversions, value_sum in rows:
        point = points.setdefault((day, variant_id), [0, 0, 0.0])
        if row_metric == EXPOSURE:
            point[0] += visitors
        else:
            point[1] += conversions
            point[2] += value_sum
    return [DailyPoint(d, v, *p) for (d, v), p in sorted(points.items())]
