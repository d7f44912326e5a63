"""Results kept as rollups updated on ingest, and the lock the evaluator takes.

Reading a campaign's results must cost the same with ten events or ten million, so nothing here is
ever rebuilt by scanning events: ingestion and orders add to these rows as visitors are exposed
and convert for the first time.
"""

from datetime import date, datetime

from sqlalchemy import Date, Float, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .types import UTCDateTime

#: The metric name of the exposure rows: ``visitors`` there is the denominator of every metric.
EXPOSURE = "exposure"
#: Longest stratum key (``customer|desktop|referral|`` and a funnel stage of up to 64).
STRATUM_LENGTH = 100


def phase_key():
    """The phase column of a rollup key: the campaign phase the visitor was first exposed in
    (``assignments.phase``); rows from before phases were kept are phase 1."""
    return mapped_column(primary_key=True, default=1, server_default=text("1"))


class _Figures:
    """The figures a rollup row adds up: ``visitors`` exposed (the exposure rows) or converted
    (the metric rows), and the per-visitor values' sum and sum of squares (revenue), so a mean
    and variance follow without reading any visitor again."""

    visitors: Mapped[int] = mapped_column(default=0, sort_order=10)
    conversions: Mapped[int] = mapped_column(default=0, sort_order=10)
    value_sum: Mapped[float] = mapped_column(Float, default=0.0, sort_order=10)
    value_sum_squares: Mapped[float] = mapped_column(Float, default=0.0, sort_order=10)


class VariantMetric(_Figures, db.Model):
    """One variant's daily figures for one metric (or the exposures, metric ``exposure``).

    ``visitors`` counts visitors whose first impression of the variant fell on ``day`` (exposure
    rows); ``conversions`` counts exposed visitors who converted for the first time, and
    ``value_sum``/``value_sum_squares`` hold the per-visitor values (revenue) so that the mean and
    variance per visitor follow without reading any visitor again.
    """

    __tablename__ = "variant_metrics"

    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True
    )
    variant_id: Mapped[int] = mapped_column(
        ForeignKey("variants.id", ondelete="CASCADE"), primary_key=True
    )
    metric: Mapped[str] = mapped_column(String(32), primary_key=True)
    phase: Mapped[int] = phase_key()
    day: Mapped[date] = mapped_column(Date, primary_key=True)


class StratumMetric(_Figures, db.Model):
    """One variant's figures for one metric in one stratum, all days together.

    The stratum is what was known about the visitor when they were assigned (device, new or
    returning, orders before, traffic source, funnel stage: ``assignments.stratum``), so the
    results can compare variants within strata (post-stratification) without reading any
    visitor. Written with the same deltas as :class:`VariantMetric`, for the exposures and the
    metrics a test or guardrail judges; ``""`` holds visitors assigned before strata were kept.
    """

    __tablename__ = "stratum_metrics"

    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True
    )
    variant_id: Mapped[int] = mapped_column(
        ForeignKey("variants.id", ondelete="CASCADE"), primary_key=True
    )
    metric: Mapped[str] = mapped_column(String(32), primary_key=True)
    phase: Mapped[int] = phase_key()
    stratum: Mapped[str] = mapped_column(String(STRATUM_LENGTH), primary_key=True)


class StepReach(db.Model):
    """How many responses of one variant answered one survey step: the drop-off per step.

    Counted by the applier at a response's first answer to the step (each round of a recurring
    survey is a response), so the results page draws the drop-off without reading responses.
    """

    __tablename__ = "step_reach"

    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True
    )
    variant_id: Mapped[int] = mapped_column(
        ForeignKey("variants.id", ondelete="CASCADE"), primary_key=True
    )
    step_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    phase: Mapped[int] = phase_key()
    responses: Mapped[int] = mapped_column(default=0)


class MetricConversion(db.Model):
    """A visitor's first conversion on one metric of one campaign (and its running value).

    It makes "at most once per visitor" cheap to check, keeps revenue per visitor so the sum of
    squares can be updated incrementally, and holds conversions that arrive before the
    visitor's first impression until that impression counts them.
    """

    __tablename__ = "metric_conversions"
    __table_args__ = (Index("ix_metric_conversions_visitor", "visitor_id"),)

    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True
    )
    visitor_id: Mapped[int] = mapped_column(
        ForeignKey("visitors.id", ondelete="CASCADE"), primary_key=True
    )
    metric: Mapped[str] = mapped_column(String(32), primary_key=True)
    #: A visitor re-randomised into a new phase converts afresh there.
    phase: Mapped[int] = phase_key()
    variant_id: Mapped[int | None] = mapped_column(ForeignKey("variants.id", ondelete="CASCADE"))
    value: Mapped[float] = mapped_column(Float, default=0.0)
    first_at: Mapped[datetime] = mapped_column(UTCDateTime)


class EvaluatorLock(db.Model):
    """A lease row: how evaluators on SQLite (no advisory locks) take turns."""

    __tablename__ = "evaluator_locks"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str | None] = mapped_column(String(200))
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
