"""The loyalty funnel (SPEC §7): scores, stages, identify, figures and segment exports.

Other services call :func:`on_answers` (ingestion, after answer events), :func:`on_order` /
:func:`on_orders` (after storing orders) and :func:`identify`; each restages the visitors in one
batched pass and records every stage change with its cause.
"""

from .identify import identify
from .stages import (
    on_answers,
    on_order,
    on_orders,
    recompute_site,
    replace_stages,
    site_stages,
    visitor_funnel,
)

__all__ = [
    "identify",
    "on_answers",
    "on_order",
    "on_orders",
    "recompute_site",
    "replace_stages",
    "site_stages",
    "visitor_funnel",
]
