"""Survey responses (filters, pages, CSV export) and coupon pools (stock, import)."""

from flask import (
    Response,
    abort,
    flash,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)

from ..errors import APIError, Conflict, ValidationFailed
from ..schemas.common import form_integer, load_or_raise
from ..schemas.responses import ResponseQuerySchema
from ..services.funnel import site_stages
from ..services.ingest import responses as responses_service
from . import forms
from .blueprint import bp
from .campaigns import _site_or_404


def _filter(site):
    """The filter of the query string; a bad value is ignored and reported, never a 500."""
    args = {k: v for k, v in request.args.items() if v != ""}
    try:
        query = load_or_raise(ResponseQuerySchema(), args)
        problems = {}
    except ValidationFailed as err:
        problems = err.fields
        query = load_or_raise(
            ResponseQuerySchema(), {k: v for k, v in args.items() if k not in problems}
        )
    return responses_service.ResponseFilter.from_query(site.id, query), query, problems


@bp.get("/sites/<int:site_id>/responses")
def responses(site_id):
    """The survey responses, newest first, filtered by campaign, variant, stage and date."""
    site = _site_or_404(site_id)
    flt, query, problems = _filter(site)
    page = query["page"]
    rows, total = responses_service.list_responses(flt, page)
    pages = max(1, -(-total // responses_service.PAGE_SIZE))
    campaigns = [c for c in site.campaigns if c.kind == "survey"]
    stages = site_stages(site.id)
    args = {k: v for k, v in request.args.items() if k != "page" and v}
    return render_template(
        "admin/responses.html",
        site=site,
        rows=rows,
        total=total,
        page=page,
        pages=pages,
        campaigns=campaigns,
        variants=[(c, v) for c in campaigns for v in c.variants],
        stages=stages,
        stage_names={s.key: s.name for s in stages},
        args=args,
        problems=problems,
    )


@bp.get("/sites/<int:site_id>/responses.csv")
def responses_csv(site_id):
    """Stream the filtered responses as CSV (cells neutralised against formula injection)."""
    site = _site_or_404(site_id)
    flt, _, problems = _filter(site)
    if problems:
        named = "; ".join(f"{name}: {' '.join(texts)}" for name, texts in sorted(problems.items()))
        abort(400, description=f"A filter is not valid ({named}).")
    return Response(
        stream_with_context(responses_service.csv_rows(flt)),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="responses-site-{site.id}.csv"'},
    )


# -- coupon pools -----------------------------------------------------------------------------


def _pools_page(site, errors=None, state=None, status=200, report=None):
    from ..services.rewards import coupons

    pools = coupons.pools_of_site(site.id)
    return render_template(
        "admin/coupons.html",
        site=site,
        pools=pools,
        stock=coupons.stock([p.id for p in pools]),
        errors=forms.FieldErrors(errors),
        state=state or {},
        report=report,
    ), status


@bp.get("/sites/<int:site_id>/coupons")
def coupons(site_id):
    """The site's coupon pools with their stock; forms to add a pool and import codes."""
    return _pools_page(_site_or_404(site_id))


@bp.post("/sites/<int:site_id>/coupons")
def coupon_pool_create(site_id):
    """Add a coupon pool."""
    from ..schemas.rewards import PoolSchema
    from ..services.rewards import coupons as coupons_service

    site = _site_or_404(site_id)
    state = {"name": request.form.get("name", "")}
    try:
        data = load_or_raise(PoolSchema(), state)
        pool = coupons_service.create_pool(site, data["name"])
    except (ValidationFailed, Conflict) as err:
        return _pools_page(site, err.fields or {"name": [err.message]}, state, 400)
    flash(f"Pool “{pool.name}” added (id {pool.id}). Import or generate its codes.", "success")
    return redirect(url_for("admin.coupons", site_id=site.id))


@bp.post("/coupons/<int:pool_id>/import")
def coupon_import(pool_id):
    """Import codes into a pool: a CSV file (``code`` column or the first) or pasted lines."""
    from ..services.rewards import coupons as coupons_service

    try:
        pool = coupons_service.get_pool(pool_id)
    except APIError:
        abort(404)
    site = _site_or_404(pool.site_id)
    upload = request.files.get("file")
    text = ""
    if upload is not None and upload.filename:
        text = upload.read().decode("utf-8-sig", errors="replace")
    text = text or request.form.get("codes", "")
    codes = coupons_service.codes_from_csv(text)
    key = f"pool_{pool.id}"
    if not codes:
        return _pools_page(
            site, {key: ["Paste codes (one per line) or choose a CSV file."]}, None, 400
        )
    result = coupons_service.import_codes(pool, codes)
    return _pools_page(site, None, None, 200, {"pool": pool, "result": result})


@bp.post("/coupons/<int:pool_id>/generate")
def coupon_generate(pool_id):
    """Generate unguessable codes (at least 60 random bits each) into a pool."""
    from ..schemas.rewards import GenerateCodesSchema
    from ..services.rewards import coupons as coupons_service

    try:
        pool = coupons_service.get_pool(pool_id)
    except APIError:
        abort(404)
    site = _site_or_404(pool.site_id)
    raw = {"count": request.form.get("count", ""), "prefix": request.form.get("prefix", "")}
    try:
        count = form_integer(raw["count"])
        data = load_or_raise(GenerateCodesSchema(), {"count": count, "prefix": raw["prefix"]})
        made = coupons_service.generate_codes(pool, data["count"], data["prefix"], data["symbols"])
    except (ValidationFailed, Conflict) as err:
        fields = {
            f"pool_{pool.id}.{k}": v for k, v in (err.fields or {"count": [err.message]}).items()
        }
        return _pools_page(site, fields, None, 400)
    flash(f"{made:,} {'code' if made == 1 else 'codes'} generated into “{pool.name}”.", "success")
    return redirect(url_for("admin.coupons", site_id=site.id))
