"""A campaign's metric over time per variant: the cumulative rate after each day, with interval.

The daily counts come from the results service (``campaign_results(..., with_series=True)``);
the interval is the same one the results table shows for binary metrics (Wilson, at the
campaign's alpha, from ``ab.stats``), so the last point of the chart matches the table.
"""

from dataclasses import dataclass

from ...vocabulary import AB_DEFAULTS


@dataclass(frozen=True)
class SeriesPoint:
    day: str
    visitors: int
    rate: float | None
    lower: float | None
    upper: float | None


def cumulative_series(results: dict) -> dict[int, list[SeriesPoint]]:
    """Per variant id, one point per day with data: cumulative figures up to that day.

    Revenue is a mean per visitor; its daily rollup has no sum of squares, so its points carry
    no interval.
    """
    from ab import stats

    alpha = float(results.get("alpha", AB_DEFAULTS["alpha"]))
    is_mean = results.get("metric") == "revenue"
    totals: dict[int, list] = {}
    out: dict[int, list[SeriesPoint]] = {v["variant_id"]: [] for v in results["variants"]}
    for point in results.get("series") or []:
        running = totals.setdefault(point["variant_id"], [0, 0, 0.0])
        running[0] += point["visitors"]
        running[1] += point["conversions"]
        running[2] += point["value_sum"]
        visitors, conversions, value_sum = running
        if visitors == 0:
            continue
        if is_mean:
            rate, lower, upper = value_sum / visitors, None, None
        else:
            conversions = min(conversions, visitors)
            rate = conversions / visitors
            lower, upper = stats.wilson_interval(conversions, visitors, alpha)
        out.setdefault(point["variant_id"], []).append(
            SeriesPoint(point["day"], visitors, rate, lower, upper)
        )
    return out
