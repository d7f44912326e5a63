"""The loyalty funnel: the rule language, dimension scores, stages, figures and segment exports.

Other areas call :func:`on_answers` (ingest, after answer events), :func:`on_order` /
:func:`on_orders` (rewards, after storing orders); visitors' identify restages merged visitors.
Each restages the visitors in one batched pass and records every stage change with its cause.

May import: platform, models, vocabulary. Imported by every area above it.
"""

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
    "on_answers",
    "on_order",
    "on_orders",
    "recompute_site",
    "replace_stages",
    "site_stages",
    "visitor_funnel",
]
