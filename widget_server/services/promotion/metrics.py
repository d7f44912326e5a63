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

Every delta of an exposure or of a metric a test or guardrail may judge also goes, with the same
statement's sibling, into ``stratum_metrics`` under the assignment's stratum (what decide knew
before the popup, ``services/campaigns/strata.py``), summed over all days: the figures
post-stratification reads.

Every row also carries the campaign phase the visitor counts in (``assignments.phase``: the
phase they were first exposed in, or re-randomised in), so the statistics read one phase only.
What a visitor of an ended phase does after its end counts nowhere: the phase's figures stay as
they were when the edit ended it.
"""

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite

from ...extensions import db
from ...models import (
    EXPOSURE,
    TEASER_EVENT_TYPES,
    Assignment,
    MetricConversion,
    StratumMetric,
    VariantMetric,
)
from ...vocabulary import GUARDRAIL_METRICS, MEAN_METRICS, METRICS
from ..campaigns import phases
from ..platform.plans import rows_planned_per_run
from ..platform.upsert import insert_ignoring_conflicts

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
#: Figures only a guardrail judges: ``order`` (the visitor ordered after their first
#: impression) and ``close`` (they closed the popup), each 0/1 per visitor.
GUARDRAIL_ONLY = tuple(m for m in GUARDRAIL_METRICS if m not in METRICS)
#: Every figure kept per variant: the A/B metrics, the guardrail-only ones, and the teaser's
#: visitors who saw its tab (``teaser_shown``) and who reopened the popup with it
#: (``teaser_open``), which no test judges.
FIGURES = (*METRICS, *GUARDRAIL_ONLY, *TEASER_EVENT_TYPES)
#: The figures also kept per stratum: the exposures and every metric a test or guardrail judges.
STRATIFIED = frozenset({EXPOSURE, *METRICS, *GUARDRAIL_ONLY})
#: The stratum of visitors assigned before strata were kept (``assignments.stratum`` NULL).
NO_STRATUM = ""
#: A visitor converts once per campaign, metric and phase.
CONVERSION_KEY = ["campaign_id", "visitor_id", "metric", "phase"]


@dataclass(frozen=True)
class VariantFigures:
    """One variant's totals on one metric: the sufficient statistics the tests need."""

    variant_id: int
    visitors: int
    conversions: int
    value_sum: float
    value_sum_squares: float


@dataclass(frozen=True)
class StratumCount:
    """One variant's totals on one metric in one stratum (``visitors`` from the exposures)."""

    stratum: str
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
    """Increments to ``variant_metrics`` (per day) and ``stratum_metrics`` (per stratum) rows,
    summed per row and written in one statement per table."""

    def __init__(self):
        self.rows: dict[tuple, list] = defaultdict(lambda: [0, 0, 0.0, 0.0])
        self.strata: dict[tuple, list] = defaultdict(lambda: [0, 0, 0.0, 0.0])

    def add(self, campaign_id, variant_id, phase, stratum, metric, at: datetime, visitors=0,
            conversions=0, value=0.0, value_squares=0.0):  # fmt: skip
        increments = (visitors, conversions, value, value_squares)
        keys = [(self.rows, (campaign_id, variant_id, metric, phase, at.date()))]
        if metric in STRATIFIED:
            stratum_key = (campaign_id, variant_id, metric, phase, stratum or NO_STRATUM)
            keys.append((self.strata, stratum_key))
        for rows, key in keys:
            row = rows[key]
            for i, increment in enumerate(increments):
                row[i] += increment

    def flush(self) -> None:
        """Upsert all increments; rows in key order so concurrent batches cannot deadlock."""
        dialect = db.session.get_bind().dialect.name
        for model, rows, last_key in ((VariantMetric, self.rows, "day"),
                                      (StratumMetric, self.strata, "stratum")):  # fmt: skip
            if not rows:
                continue
            names = ("campaign_id", "variant_id", "metric", "phase", last_key)
            values = [
                {
                    **dict(zip(names, key, strict=True)),
                    "visitors": row[0],
                    "conversions": row[1],
                    "value_sum": row[2],
                    "value_sum_squares": row[3],
                }
                for key, row in sorted(rows.items())
            ]
            db.session.execute(_increment_statement(dialect, model, last_key), values)
            rows.clear()


@cache
def _increment_statement(dialect: str, model, last_key: str):
    """``INSERT ... ON CONFLICT DO UPDATE SET n = n + excluded.n``, built once per dialect and
    table: the rows travel as parameters (executemany), so ingestion compiles nothing per
    batch."""
    table = model.__table__
    statement = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
    return statement.on_conflict_do_update(
        index_elements=["campaign_id", "variant_id", "metric", "phase", last_key],
        set_={
            name: table.c[name] + statement.excluded[name]
            for name in ("visitors", "conversions", "value_sum", "value_sum_squares")
        },
    )


_CONVERTED = (
    MetricConversion.campaign_id,
    MetricConversion.visitor_id,
    MetricConversion.phase,
    MetricConversion.metric,
    MetricConversion.value,
)


#: PostgreSQL's read of the visitors' kept conversions, planned at every run
#: (:func:`~..platform.plans.rows_planned_per_run`): the plan the server kept for the prepared
#: read, made while the table was small, walked the primary key (whose second column is the
#: visitor) once per visitor, 30 ms a chunk at 8,000 rows; planned for its values it probes the
#: visitor index.
KEPT_BY_VISITOR = (
    "SELECT campaign_id, visitor_id, phase, metric, value FROM metric_conversions"
    " WHERE visitor_id = ANY(%(visitor_ids)s::integer[])"
)


def _kept_conversions(visitor_ids: set[int]) -> list[tuple]:
    """``(campaign, visitor, phase, metric, value)`` of every conversion kept for these visitors,
    as plain rows (a chunk reads thousands; only their values count)."""
    if db.session.get_bind().dialect.name == "postgresql":
        return rows_planned_per_run(KEPT_BY_VISITOR, {"visitor_ids": sorted(visitor_ids)})
    found = db.session.execute(
        select(*_CONVERTED).where(MetricConversion.visitor_id.in_(visitor_ids))
    )
    return found.all()


class IngestMetrics:
    """Folds one ingested batch into the rollups; ingestion calls :meth:`fold` per fresh event.

    ``fold`` must see each event *before* ingestion updates the assignment, so that it can tell a
    first impression or a first completion from a repeat.
    """

    def __init__(self, assignments: Iterable[Assignment]):
        by_key = {(a.campaign_id, a.visitor_id): a for a in assignments}
        self.deltas = _Deltas()
        #: ``{(campaign, visitor, phase): {metric: value}}`` of the conversions already kept.
        self.converted: dict[tuple[int, int, int], dict[str, float | None]] = defaultdict(dict)
        self.new_conversions: list[dict] = []
        self.ended = phases.ended_phases(c for c, _ in by_key)
        if by_key:
            for campaign_id, visitor_id, phase, metric, value in _kept_conversions(
                {v for _, v in by_key}
            ):
                if (campaign_id, visitor_id) in by_key:
                    self.converted[(campaign_id, visitor_id, phase)][metric] = value

    def fold(self, assignment: Assignment, event: dict) -> None:
        if assignment.variant_id is None or assignment.sampled_out:
            return
        at = event["occurred_at"]
        ended = self.ended.get((assignment.campaign_id, assignment.phase))
        if ended is not None and at >= ended:
            return  # after the visitor's phase ended
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
        elif kind == "close":
            self._first(assignment, "close", at, exposed)
        for metric in event_metrics(event):
            self._first(assignment, metric, at, exposed)

    def _first(self, assignment: Assignment, metric: str, at: datetime, exposed: bool) -> None:
        """Count the visitor on ``metric`` the first time only (kept until exposed).

        A teaser's figure is counted only after the visitor was shown the popup and closed it
        (the only way the snippet draws the tab): a forged ``teaser_open`` counts nowhere.
        """
        key = (assignment.campaign_id, assignment.visitor_id, assignment.phase)
        if metric in self.converted[key]:
            return
        self.converted[key][metric] = 0.0
        self.new_conversions.append(
            {
                "campaign_id": assignment.campaign_id,
                "visitor_id": assignment.visitor_id,
                "metric": metric,
                "phase": assignment.phase,
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
        key = (assignment.campaign_id, assignment.visitor_id, assignment.phase)
        for metric, kept in self.converted[key].items():
            value = kept or 0.0
            self.deltas.add(*cell, metric, at, conversions=1, value=value, value_squares=value**2)

    @staticmethod
    def _cell(assignment: Assignment) -> tuple[int, int, int, str | None]:
        """(campaign, variant, phase, stratum): where the visitor's figures count."""
        return assignment.campaign_id, assignment.variant_id, assignment.phase, assignment.stratum

    def flush(self) -> None:
        insert_ignoring_conflicts(MetricConversion, self.new_conversions, CONVERSION_KEY)
        self.deltas.flush()


#: What the server side may report: every metric but completion (a browser event), and the
#: guardrails' ``order`` and ``close``.
SERVER_METRICS = tuple(m for m in (*METRICS, *GUARDRAIL_ONLY) if m != "completion")


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
    if metric not in SERVER_METRICS:
        raise ValueError(f"metric must be one of {SERVER_METRICS}, not {metric!r}")
    if value < 0:
        raise ValueError(f"value must be 0 or more, not {value!r}")
    return bool(_record(campaign_id, visitor_id, ((metric, value),), at))


def _record(campaign_id: int, visitor_id: int, conversions, at: datetime) -> int:
    """Count ``(metric, value)`` conversions of one visitor in one campaign under one lock of
    their assignment; how many were counted or kept."""
    assignment = db.session.scalar(
        select(Assignment)
        .where(Assignment.campaign_id == campaign_id, Assignment.visitor_id == visitor_id)
        .with_for_update()
    )
    if assignment is None or assignment.variant_id is None or assignment.sampled_out:
        return 0
    exposed_at = assignment.first_impression_at
    if exposed_at is not None and at < exposed_at:
        return 0
    if _after_phase(campaign_id, assignment.phase, at):
        return 0
    firsts = [metric for metric, _ in conversions if metric not in MEAN_METRICS]
    counted = 0
    if firsts:
        cell = (campaign_id, visitor_id, assignment.variant_id)
        counted += len(
            record_first_conversions(
                *cell, exposed_at, firsts, at, assignment.stratum, assignment.phase, False
            )
        )
    for metric, value in conversions:
        if metric in MEAN_METRICS:
            counted += _add_value(assignment, metric, float(value), at)
    return counted


def _add_value(assignment: Assignment, metric: str, value: float, at: datetime) -> bool:
    """Add ``value`` to the visitor's total on a mean metric (revenue), keeping the rollups'
    sum of squares per visitor exact."""
    campaign_id, visitor_id = assignment.campaign_id, assignment.visitor_id
    exposed = assignment.first_impression_at is not None
    phase = assignment.phase
    row = db.session.get(
        MetricConversion, (campaign_id, visitor_id, metric, phase), with_for_update=True
    )
    deltas = _Deltas()
    cell = (campaign_id, assignment.variant_id, phase, assignment.stratum)
    if row is None:
        db.session.add(
            MetricConversion(
                campaign_id=campaign_id,
                visitor_id=visitor_id,
                metric=metric,
                phase=phase,
                variant_id=assignment.variant_id,
                value=value,
                first_at=at,
            )
        )
        if exposed:
            deltas.add(*cell, metric, at, conversions=1, value=value, value_squares=value**2)
    elif value:
        before = row.value or 0.0
        row.value = before + value
        if exposed:
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
    stratum: str | None = None,
    phase: int = 1,
    check_phase: bool = True,
) -> tuple[str, ...]:
    """Count 0/1 conversions of a visitor assigned to ``variant_id`` (in ``stratum``, the
    assignment's, in its ``phase``): each metric once, in one statement (insert-ignore); counted
    in the rollups when the visitor was already exposed, else kept for the impression to count.
    Returns the metrics that were new.

    The caller holds the assignment locked (``FOR UPDATE``; on SQLite the writer lock) and read
    ``exposed_at`` under that lock, so an impression applied meanwhile cannot miss them.
    Nothing counts after ``phase`` ended (``check_phase``: unless the caller checked).
    """
    if check_phase and _after_phase(campaign_id, phase, at):
        return ()
    rows = [
        {
            "campaign_id": campaign_id,
            "visitor_id": visitor_id,
            "metric": metric,
            "phase": phase,
            "variant_id": variant_id,
            "value": 0.0,
            "first_at": at,
        }
        for metric in metrics
    ]
    new = insert_ignoring_conflicts(
        MetricConversion,
        rows,
        CONVERSION_KEY,
        returning=(MetricConversion.__table__.c.metric,),
    )
    counted = tuple(row.metric for row in new)
    if exposed_at is not None and counted:
        deltas = _Deltas()
        for metric in counted:
            deltas.add(campaign_id, variant_id, phase, stratum, metric, at, conversions=1)
        deltas.flush()
    return counted


def _after_phase(campaign_id: int, phase: int, at: datetime) -> bool:
    """Whether ``at`` comes after the end of the campaign's ``phase`` (one read)."""
    ended = phases.ended_phases([campaign_id]).get((campaign_id, phase))
    return ended is not None and at >= ended


def record_order(visitor_id: int, total: float, at: datetime, coupon_id: int | None = None) -> int:
    """Fold one new order into the results of every campaign the visitor is assigned to.

    ``revenue`` gains ``total`` and ``order`` counts the visitor (once) in each of the visitor's
    campaigns, when the order is not dated before their first impression; ``coupon_redemption``
    counts in the campaign whose wheel handed out ``coupon_id``. Call it once per new order
    (orders are idempotent by id upstream). Returns how many campaigns' figures changed.
    """
    from ...models import CouponCode

    changed = 0
    campaign_ids = db.session.scalars(
        select(Assignment.campaign_id).where(
            Assignment.visitor_id == visitor_id, Assignment.variant_id.is_not(None)
        )
    ).all()
    for campaign_id in sorted(campaign_ids):
        conversions = (("revenue", float(total)), ("order", 0.0))
        changed += bool(_record(campaign_id, visitor_id, conversions, at))
    if coupon_id is not None:
        coupon = db.session.get(CouponCode, coupon_id)
        if coupon is not None and coupon.campaign_id is not None:
            owner = coupon.visitor_id or visitor_id
            changed += record_conversion(coupon.campaign_id, owner, "coupon_redemption", at)
    return changed


def figures(
    campaign_ids: Iterable[int], phases: Mapping[int, int] | None = None
) -> dict[int, dict[str, dict[int, VariantFigures]]]:
    """Totals per campaign, metric and variant of one phase each (``phases``: ``{campaign id:
    phase}``, phase 1 for a campaign it leaves out), in one grouped query over the rollups.

    Exposure rows give every metric its ``visitors``; a variant with none reads as zeros.
    """
    campaign_ids = list(campaign_ids)
    if not campaign_ids:
        return {}
    phases = phases or {}
    rows = db.session.execute(
        select(
            VariantMetric.campaign_id,
            VariantMetric.variant_id,
            VariantMetric.metric,
            VariantMetric.phase,
            func.sum(VariantMetric.visitors),
            func.sum(VariantMetric.conversions),
            func.sum(VariantMetric.value_sum),
            func.sum(VariantMetric.value_sum_squares),
        )
        .where(VariantMetric.campaign_id.in_(campaign_ids))
        .group_by(
            VariantMetric.campaign_id,
            VariantMetric.variant_id,
            VariantMetric.metric,
            VariantMetric.phase,
        )
    ).all()
    # Grouped per phase too and the other phases dropped here: one query for any mix of phases.
    return _totals(
        campaign_ids,
        [(c, v, m, *sums) for c, v, m, phase, *sums in rows if phase == phases.get(c, 1)],
    )


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


def stratum_figures(
    campaign_ids: Iterable[int], metrics: Iterable[str], phases: Mapping[int, int] | None = None
) -> dict[int, dict[str, dict[int, list[StratumCount]]]]:
    """Totals per campaign, metric (of ``metrics``), variant and stratum, in one grouped query
    over ``stratum_metrics`` (rows: campaigns x variants x metrics x strata, no day), of one
    phase per campaign (``phases``, as :func:`figures`).

    The exposure rows give each stratum its ``visitors``; a stratum without a conversion reads
    as zeros. For a 0/1 metric ``value_sum`` and ``value_sum_squares`` are the conversions.
    """
    campaign_ids = list(campaign_ids)
    wanted = sorted(set(metrics) & STRATIFIED - {EXPOSURE})
    if not campaign_ids or not wanted:
        return {c: {} for c in campaign_ids}
    rows = db.session.execute(
        select(
            StratumMetric.campaign_id,
            StratumMetric.variant_id,
            StratumMetric.metric,
            StratumMetric.phase,
            StratumMetric.stratum,
            StratumMetric.visitors,
            StratumMetric.conversions,
            StratumMetric.value_sum,
            StratumMetric.value_sum_squares,
        ).where(
            StratumMetric.campaign_id.in_(campaign_ids),
            StratumMetric.metric.in_([EXPOSURE, *wanted]),
        )
    ).all()
    exposed: dict[tuple[int, int], dict[str, int]] = defaultdict(dict)
    converted: dict[tuple[int, int, str], dict[str, tuple]] = defaultdict(dict)
    phases = phases or {}
    for campaign_id, variant_id, metric, phase, stratum, n, conversions, total, squares in rows:
        if phase != phases.get(campaign_id, 1):
            continue
        if metric == EXPOSURE:
            exposed[(campaign_id, variant_id)][stratum] = int(n or 0)
        else:
            converted[(campaign_id, variant_id, metric)][stratum] = (
                int(conversions or 0), float(total or 0.0), float(squares or 0.0)
            )  # fmt: skip
    result: dict[int, dict[str, dict[int, list[StratumCount]]]] = {
        c: {m: {} for m in wanted} for c in campaign_ids
    }
    for (campaign_id, variant_id), visitors in exposed.items():
        for metric in wanted:
            found = converted.get((campaign_id, variant_id, metric), {})
            counts = []
            for stratum in sorted(visitors.keys() | found.keys()):
                conversions, total, squares = found.get(stratum, (0, 0.0, 0.0))
                if metric not in MEAN_METRICS:
                    total = squares = float(conversions)
                counts.append(
                    StratumCount(stratum, visitors.get(stratum, 0), conversions, total, squares)
                )
            result[campaign_id][metric][variant_id] = counts
    return result


def campaign_figures(campaign_id: int, metric: str, phase: int = 1) -> dict[int, VariantFigures]:
    """One campaign's totals per variant on one metric in one phase."""
    return figures([campaign_id], {campaign_id: phase})[campaign_id][metric]


def figures_and_series(
    campaign_id: int, metric: str, phase: int = 1
) -> tuple[dict[str, dict[int, VariantFigures]], list[DailyPoint]]:
    """One campaign's totals (as :func:`figures`) and its daily points on ``metric`` (as
    :func:`daily_series`) in one phase, from one read of its rollup rows (variants x metrics x
    days).
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
        ).where(VariantMetric.campaign_id == campaign_id, VariantMetric.phase == phase)
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


def daily_series(campaign_id: int, metric: str, phase: int = 1) -> list[DailyPoint]:
    """Daily (not cumulative) visitors and conversions per variant in one phase, oldest day
    first."""
    return figures_and_series(campaign_id, metric, phase)[1]


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
