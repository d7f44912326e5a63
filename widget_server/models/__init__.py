"""The data model: one module per concept group, all re-exported here."""

from .campaigns import Campaign, Decision, Variant
from .events import EVENT_TYPES, TEASER_EVENT_TYPES, Event, Response
from .funnel import FunnelSnapshot, FunnelStage, StageChange
from .metrics import (
    EXPOSURE,
    STRATUM_LENGTH,
    EvaluatorLock,
    MetricConversion,
    StepReach,
    StratumMetric,
    VariantMetric,
)
from .rewards import CouponCode, CouponPool, Order, PlatformReceipt, Spin
from .sites import AdminSession, AdminToken, AdminUser, JobWatermark, Site, WebhookDelivery
from .visitors import Assignment, Visitor

__all__ = [
    "EVENT_TYPES",
    "EXPOSURE",
    "STRATUM_LENGTH",
    "TEASER_EVENT_TYPES",
    "AdminSession",
    "AdminToken",
    "AdminUser",
    "Assignment",
    "Campaign",
    "CouponCode",
    "CouponPool",
    "Decision",
    "EvaluatorLock",
    "Event",
    "FunnelSnapshot",
    "FunnelStage",
    "JobWatermark",
    "MetricConversion",
    "Order",
    "PlatformReceipt",
    "Response",
    "Site",
    "Spin",
    "StageChange",
    "StepReach",
    "StratumMetric",
    "Variant",
    "VariantMetric",
    "Visitor",
    "WebhookDelivery",
]
