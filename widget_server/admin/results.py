"""A campaign's results: figures with uncertainty, the chart over time, decisions, promote/undo."""

from flask import abort, flash, redirect, render_template, request, url_for

from ..errors import Conflict, ValidationFailed
from ..extensions import db
from ..services.campaigns import phases
from ..services.promotion import evaluation, results
from ..services.promotion.result_series import cumulative_series
from .blueprint import bp
from .campaigns import _campaign_or_404
from .charts import PALETTE, Line, line_chart, responsive

METRIC_NAMES = {
    "completion": "Survey completion rate",
    "spin": "Spin rate",
    "claim": "Claim rate",
    "email_capture": "E-mail capture rate",
    "coupon_redemption": "Coupon redemption rate",
    "revenue": "Revenue per visitor",
}
METHOD_NAMES = {
    "sequential": "sequential test (always-valid p-values)",
    "msprt": "mixture sequential probability ratio test (always-valid p-values)",
    "fixed": "fixed-horizon test",
    "bayesian": "Bayesian comparison",
    "bandit": "Thompson-sampling bandit",
}
ACTION_WORDS = {
    "continue": "Keep testing",
    "promote": "Promote the winner",
    "hold": "Promotion held by a guardrail",
    "stop": "Stop and keep the control",
    "undo": "Undone",
}
GUARDRAIL_NAMES = {
    "revenue": "Revenue per visitor",
    "order": "Order rate",
    "close": "Close rate",
}
VERDICT_WORDS = {"harmed": "Harmed", "ok": "No harm shown", "no data": "No data yet"}


@bp.get("/campaigns/<int:campaign_id>/results")
def campaign_results(campaign_id):
    """Per-variant figures (raw and adjusted), guardrails, SRM, the policy's decision in words,
    the chart and the decision log."""
    campaign = _campaign_or_404(campaign_id)
    try:
        phase = phases.chosen_phase(campaign, request.args.get("phase"))
    except ValidationFailed:
        abort(404)
    body = results.campaign_results(campaign, with_series=True, phase=phase)
    series = cumulative_series(body)
    lines = [
        Line(
            v["name"],
            [(p.day, p.rate, p.lower, p.upper) for p in series.get(v["variant_id"], [])],
            PALETTE[i % len(PALETTE)],
        )
        for i, v in enumerate(body["variants"])
    ]
    metric_name = METRIC_NAMES.get(body["metric"], body["metric"])
    chart = responsive(line_chart, lines, percent=body["metric"] != "revenue", title=metric_name)
    names = {v.id: v.name for v in campaign.variants}
    return render_template(
        "admin/results.html",
        site=campaign.site,
        campaign=campaign,
        results=body,
        chart=chart,
        colors={v["variant_id"]: PALETTE[i % len(PALETTE)] for i, v in enumerate(body["variants"])},
        metric_name=metric_name,
        method_name=METHOD_NAMES.get(body["method"], body["method"]),
        action_words=ACTION_WORDS,
        guardrail_names=GUARDRAIL_NAMES,
        verdict_words=VERDICT_WORDS,
        decisions=evaluation.decisions_of(campaign),
        variant_names=names,
    )


@bp.post("/campaigns/<int:campaign_id>/promote")
def campaign_promote(campaign_id):
    """Promote a variant by hand: it takes all non-holdout traffic."""
    campaign = _campaign_or_404(campaign_id)
    raw = request.form.get("variant_id", "")
    if not (raw.isascii() and raw.isdigit()):
        flash("Choose a variant to promote.", "error")
        return redirect(url_for("admin.campaign_results", campaign_id=campaign_id))
    try:
        decision = evaluation.promote_by_hand(campaign, int(raw))
    except (Conflict, ValidationFailed) as err:
        flash(err.message, "error")
    except ValueError as err:  # ab/ cannot judge the figures yet (e.g. no visitors at all)
        db.session.rollback()
        flash(f"Cannot promote yet: {err}.", "error")
    else:
        flash(decision.reason, "success")
    return redirect(url_for("admin.campaign_results", campaign_id=campaign_id))


@bp.post("/campaigns/<int:campaign_id>/undo")
def campaign_undo(campaign_id):
    """Undo the latest promotion or stop: the previous weights come back."""
    campaign = _campaign_or_404(campaign_id)
    try:
        decision = evaluation.undo(campaign)
    except Conflict as err:
        flash(err.message, "error")
    else:
        flash(decision.reason, "success")
    return redirect(url_for("admin.campaign_results", campaign_id=campaign_id))
