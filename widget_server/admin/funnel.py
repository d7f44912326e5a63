"""The site's loyalty funnel: visitors per stage, stage-to-stage conversion, repeat customers."""

from flask import Response, current_app, render_template, stream_with_context

from ..services.funnel import site_stages
from ..services.funnel.export import segment_rows
from ..services.funnel.figures import cached_funnel_figures, figures_age_s, shares_pct
from .blueprint import bp
from .campaigns import _site_or_404
from .charts import bar_chart, responsive

OPS = {"gte": "≥", "gt": ">", "lte": "≤", "lt": "<", "eq": "="}


def rule_words(rule) -> str:
    """A stage rule in words: ``{"orders": {"gte": 2}}`` -> "orders ≥ 2"."""
    if not rule:
        return "everyone"
    if "all" in rule:
        return " and ".join(_grouped(r) for r in rule["all"]) or "everyone"
    if "any" in rule:
        return " or ".join(_grouped(r) for r in rule["any"]) or "no one"
    if "not" in rule:
        return f"not {_grouped(rule['not'])}"
    if "score" in rule:
        return f"{rule['score']} score {_comparisons(rule)}"
    for fact, label in (("orders", "orders"), ("spent", "total spent")):
        if fact in rule:
            return f"{label} {_comparisons(rule[fact])}"
    if "attribute" in rule:
        name = rule["attribute"]
        if "equals" in rule:
            return f"{name} = {rule['equals']}"
        if "in" in rule:
            return f"{name} in {', '.join(str(v) for v in rule['in'])}"
        if rule.get("exists"):
            return f"{name} is set"
        return f"{name} {_comparisons(rule)}"
    return str(rule)


def _grouped(rule) -> str:
    words = rule_words(rule)
    return f"({words})" if (" and " in words or " or " in words) else words


def _comparisons(source: dict) -> str:
    return " and ".join(f"{OPS[op]} {source[op]:g}" for op in OPS if op in source)


def _moved_on(conversion_by_week: list[dict]) -> dict[str, str]:
    """Per stage, over the weeks shown: how many entered it and the share who moved on later.

    The funnel service counts both per week; the chart sums its weeks, computing nothing new.
    """
    totals: dict[str, list[int]] = {}
    for row in conversion_by_week:
        entered_advanced = totals.setdefault(row["stage"], [0, 0])
        entered_advanced[0] += row["entered"]
        entered_advanced[1] += row["advanced"]
    return {
        stage: f"{entered:,} entered, {advanced / entered:.0%} moved on to a later stage"
        for stage, (entered, advanced) in totals.items()
        if entered
    }


def age_words(age_s: float) -> str:
    """How long ago, in the words the page uses: "just now", "40 s ago", "3 min ago", "2 h ago"."""
    if age_s < 2:
        return "just now"
    if age_s < 60:
        return f"{age_s:.0f} s ago"
    if age_s < 3600:
        return f"{age_s // 60:.0f} min ago"
    if age_s < 2 * 86400:
        return f"{age_s // 3600:.0f} h ago"
    return f"{age_s // 86400:.0f} days ago"


def _bars(figures: dict, moved_on: dict[str, str]) -> list[tuple[str, int, str]]:
    """One bar per stage, retired stage and the visitors in none; notes from the service's
    shares (which add up to 100)."""
    rows = [(s["name"], s["key"], s["visitors"]) for s in figures["stages"]]
    rows += [(f"{r['key']} (retired)", r["key"], r["visitors"]) for r in figures["retired_stages"]]
    if figures["unstaged_visitors"]:
        rows.append(("No stage", None, figures["unstaged_visitors"]))
    shares = shares_pct([visitors for _, _, visitors in rows], decimals=1)
    bars = []
    for (label, key, visitors), share in zip(rows, shares, strict=True):
        parts = [f"{share:.1f}% of visitors" if share is not None else ""]
        parts.append(moved_on.get(key, "") if key else "meets no stage's rule")
        bars.append((label, visitors, " · ".join(part for part in parts if part)))
    return bars


@bp.get("/sites/<int:site_id>/funnel")
def funnel(site_id):
    """Visitors per stage with the stage-to-stage flow, repeat customers, and the stage rules."""
    site = _site_or_404(site_id)
    figures = cached_funnel_figures(site.id, None, 12)  # the API's snapshot: fast on big sites
    stages = site_stages(site.id)
    bars = _bars(figures, _moved_on(figures["conversion_by_week"]))
    names = {s.key: s.name for s in stages}
    weeks = sorted({row["week"] for row in figures["conversion_by_week"]})
    flow = {(row["week"], row["stage"]): row for row in figures["conversion_by_week"]}
    age_s = figures_age_s(figures)
    return render_template(
        "admin/funnel.html",
        site=site,
        figures=figures,
        chart=responsive(bar_chart, bars, "Visitors per funnel stage"),
        stages=stages,
        stage_names=names,
        rule_words=rule_words,
        weeks=weeks,
        flow=flow,
        computed_ago=age_words(age_s),
        ttl_s=current_app.config["FUNNEL_FIGURES_TTL_S"],
        refreshing=age_s > current_app.config["FUNNEL_FIGURES_TTL_S"] > 0,
    )


@bp.get("/sites/<int:site_id>/segments.csv")
def segments_csv(site_id):
    """Stream the segments export: one row per visitor with stage, scores and orders."""
    site = _site_or_404(site_id)
    return Response(
        stream_with_context(segment_rows(site.id)),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="segments-site-{site.id}.csv"'},
    )
