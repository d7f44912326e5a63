"""Each visitor's funnel stage: recomputed from scores, orders and attributes, history kept.

Every recomputation works on a batch of visitors with a fixed number of queries (the responses
with their surveys, or the order figures; the site's stages with its webhook settings; one insert
of the stage changes and one of the ``stage.changed`` webhook deliveries), so an events batch or
an order adds no query per visitor.
"""

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import bindparam, delete, func, insert, or_, select

from ...errors import NotFound
from ...extensions import db
from ...models import FunnelStage, Order, Response, Site, StageChange, Variant, Visitor
from ...models.types import utcnow
from ...vocabulary import STAGE_CHANGED
from ..platform import webhooks
from ..platform.changes import announce_site_change, note_changed_visitors
from ..platform.sets import one_of
from ..platform.upsert import write_changed
from .rules import DEFAULT_STAGES, Facts, StageDefinition, stage_for
from .scoring import scoring_of, visitor_scores

CAUSES = ("answer", "order", "identify", "rules")
#: Visitors per chunk when a rule change recomputes a whole site.
RECOMPUTE_CHUNK = 2000


def site_stages(site_id: int) -> list[StageDefinition]:
    """The site's funnel in order; the default loyalty funnel when it has none of its own."""
    return site_funnel(site_id)[0]


#: The hot-path reads and the history insert, built once and run on the session's connection:
#: restaging is a few small statements per request, and the ORM's per-statement work (compile
#: lookups, autoflush, result objects) cost more CPU than the database did.
_FUNNEL_QUERY = (
    select(Site.settings, FunnelStage.key, FunnelStage.name, FunnelStage.rule)
    .outerjoin(FunnelStage, FunnelStage.site_id == Site.id)
    .where(Site.id == bindparam("site_id"))
    .order_by(FunnelStage.position)
)
_RESPONSES_QUERY = select(
    Response.visitor_id, Response.campaign_id, Response.variant_id, Response.answers
).order_by(Response.round)  # a recurring survey's later round overrides the earlier ones
#: The surveys the responses answered, each read once (joined, a survey's content came with each
#: of its responses: hundreds of copies of one document in a chunk of the applier's).
_CONTENT_QUERY = select(Variant.id, Variant.content).where(
    Variant.id.in_(bindparam("variant_ids", expanding=True))
)
_OWNER = func.coalesce(Visitor.merged_into_id, Visitor.id)
_ORDER_FIGURES_QUERY = (
    select(_OWNER, func.count(Order.id), func.coalesce(func.sum(Order.total), 0))
    .join(Visitor, Visitor.id == Order.visitor_id)
    .where(
        or_(
            Visitor.id.in_(bindparam("visitor_ids", expanding=True)),
            Visitor.merged_into_id.in_(bindparam("owner_ids", expanding=True)),
        )
    )
    .group_by(_OWNER)
)
_INSERT_CHANGES = insert(StageChange.__table__)


def site_funnel(site_id: int) -> tuple[list[StageDefinition], list[str]]:
    """The site's stages and the URLs of its ``stage.changed`` webhooks, in one query
    (restaging needs both).

    Run without a flush: the visitors' new scores and stage go out in one UPDATE later.
    """
    rows = db.session.connection().execute(_FUNNEL_QUERY, {"site_id": site_id}).all()
    urls = _webhook_urls(rows[0].settings if rows else None)
    stages = [StageDefinition(r.key, r.name, r.rule or {}) for r in rows if r.key is not None]
    return (stages or list(DEFAULT_STAGES)), urls


def replace_stages(site: Site, stages: list[dict]) -> list[StageDefinition]:
    """Store a new ordered funnel and move every staged visitor to their stage under it."""
    db.session.execute(delete(FunnelStage).where(FunnelStage.site_id == site.id))
    db.session.add_all(
        FunnelStage(site_id=site.id, key=s["key"], name=s["name"], position=i, rule=s["rule"])
        for i, s in enumerate(stages)
    )
    db.session.flush()
    recompute_site(site.id)
    db.session.commit()
    announce_site_change(site.id, site.site_key)  # decide's entry stage, the funnel figures
    return site_stages(site.id)


def facts_of(visitor: Visitor) -> Facts:
    return Facts(
        scores=visitor.scores or {},
        order_count=visitor.order_count or 0,
        total_spent=float(visitor.total_spent or 0),
        attributes=visitor.attributes or {},
    )


def on_answers(visitors: Iterable[Visitor], now: datetime | None = None) -> None:
    """Rescore visitors whose answers changed, then restage them (cause ``answer``)."""
    visitors = list(visitors)
    if not visitors:
        return
    rescore(visitors)
    apply_stages(visitors, "answer", now)


def on_order(visitor: Visitor, cause: str = "order", now: datetime | None = None) -> None:
    """Call after storing an order of ``visitor``: refresh its order figures and its stage."""
    on_orders([visitor], cause, now)


def on_orders(visitors: Iterable[Visitor], cause: str = "order", now=None) -> None:
    """Refresh ``order_count`` and ``total_spent`` from the orders table, then the stages.

    Orders count for a visitor when they name it or a visitor merged into it, so the figures are
    right whatever visitor row the shop's order was attached to. (An order carries its
    customer id from the start: the orders service copies the visitor's, and identify claims
    the visitor's earlier orders, so nothing needs rewriting here.)
    """
    visitors = list(visitors)
    if not visitors:
        return
    refresh_order_figures(visitors)
    apply_stages(visitors, cause, now)


def refresh_order_figures(visitors: list[Visitor]) -> None:
    ids = [v.id for v in visitors]
    db.session.flush()  # orders moved or visitors merged in this transaction count
    rows = (
        db.session.connection()
        .execute(_ORDER_FIGURES_QUERY, {"visitor_ids": ids, "owner_ids": ids})
        .all()
    )
    figures = {owner_id: (count, total) for owner_id, count, total in rows}
    for visitor in visitors:
        count, total = figures.get(visitor.id, (0, 0))
        visitor.order_count = int(count)
        visitor.total_spent = total


def rescore(visitors: list[Visitor]) -> None:
    """Recompute dimension scores from all the visitors' responses (one query in all)."""
    by_id = {v.id: v for v in visitors}
    db.session.flush()  # the answers just folded into the responses count
    rows = (
        db.session.connection()
        .execute(_RESPONSES_QUERY.where(one_of(Response.visitor_id, by_id)))
        .all()
    )
    variant_ids = sorted({variant_id for _, _, variant_id, _ in rows if variant_id is not None})
    scoring = {}
    if variant_ids:
        contents = db.session.connection().execute(_CONTENT_QUERY, {"variant_ids": variant_ids})
        scoring = {variant_id: scoring_of(content) for variant_id, content in contents}
    # Per visitor and survey, each step's answer from the latest round that answered it.
    latest: dict[tuple[int, int], dict[str, tuple]] = {}
    for visitor_id, campaign_id, variant_id, answers in rows:
        steps = latest.setdefault((visitor_id, campaign_id), {})
        for step_id, answer in (answers or {}).items():
            steps[step_id] = (variant_id, answer)
    responses: dict[int, list] = {visitor_id: [] for visitor_id in by_id}
    for (visitor_id, _), steps in latest.items():
        for step_id, (variant_id, answer) in steps.items():
            responses[visitor_id].append((variant_id, {step_id: answer}))
    for visitor_id, visitor in by_id.items():
        scores = visitor_scores(responses[visitor_id], scoring)
        if scores != (visitor.scores or {}):
            visitor.scores = scores


def apply_stages(
    visitors: Iterable[Visitor],
    cause: str,
    now: datetime | None = None,
    stages: list[StageDefinition] | None = None,
) -> list[dict]:
    """Give each visitor the stage its facts earn; record each change (and its webhook)."""
    visitors = [v for v in visitors if v.merged_into_id is None]
    if not visitors:
        return []
    now = now or utcnow()
    site_id = visitors[0].site_id
    if stages is None:
        stages, urls = site_funnel(site_id)
    else:
        urls = _site_webhook_urls(site_id)
    changes = []
    for visitor in visitors:
        new_stage = stage_for(stages, facts_of(visitor))
        if new_stage != visitor.stage:
            changes.append(stage_change(visitor, new_stage, cause, now))
            visitor.stage = new_stage
    write_funnel_columns(visitors)
    record_changes(site_id, changes, {v.id: v for v in visitors}, urls)
    return changes


FUNNEL_COLUMNS = ("scores", "order_count", "total_spent", "stage")


def write_funnel_columns(visitors: list[Visitor]) -> None:
    """Write the visitors' changed scores, order figures and stage in one statement.

    The values are then the rows' committed state, so the ORM's flush (a unit of work per
    visitor, most of restaging's CPU) has nothing of the funnel's left to write.
    """
    write_changed(visitors, FUNNEL_COLUMNS)
    note_changed_visitors(v.id for v in visitors)


#: ``record_changes`` reads the webhook URLs itself unless the caller already has them.
_UNKNOWN = object()


def _webhook_urls(settings: dict | None) -> list[str]:
    """The site's ``stage_webhook_url`` and its ``settings.webhook`` if that asks for stages."""
    return webhooks.subscribed_urls(
        settings, STAGE_CHANGED, (settings or {}).get("stage_webhook_url")
    )


def _site_webhook_urls(site_id: int) -> list[str]:
    return _webhook_urls(db.session.scalar(select(Site.settings).where(Site.id == site_id)))


def stage_change(visitor: Visitor, new_stage: str | None, cause: str, now: datetime) -> dict:
    return {
        "site_id": visitor.site_id,
        "visitor_id": visitor.id,
        "from_stage": visitor.stage,
        "to_stage": new_stage,
        "cause": cause,
        "changed_at": now,
    }


def record_changes(
    site_id: int, changes: list[dict], visitors: dict[int, Visitor], urls=_UNKNOWN
) -> None:
    """Insert the stage changes and, when the site has stage webhooks (``urls``, read here
    when not given), their deliveries (one insert)."""
    if not changes:
        return
    db.session.connection().execute(_INSERT_CHANGES, changes)
    if urls is _UNKNOWN:
        urls = _site_webhook_urls(site_id)
    if urls:
        webhooks.enqueue(
            site_id,
            urls,
            STAGE_CHANGED,
            [(stage_change_data(c, visitors[c["visitor_id"]]), c["changed_at"]) for c in changes],
        )


def stage_change_data(change: dict, visitor: Visitor) -> dict:
    """The ``data`` of one ``stage.changed`` webhook (e-mail only when the visitor consented)."""
    return {
        "site_id": change["site_id"],
        "visitor_id": visitor.visitor_key,
        "customer_id": visitor.customer_id,
        "email": visitor.email if visitor.email_consent else None,
        "from_stage": change["from_stage"],
        "to_stage": change["to_stage"],
        "cause": change["cause"],
        "changed_at": change["changed_at"].isoformat(),
        "scores": visitor.scores or {},
        "order_count": visitor.order_count or 0,
        "total_spent": str(visitor.total_spent or 0),
    }


def recompute_site(site_id: int, cause: str = "rules") -> int:
    """Restage every visitor of the site who has a stage; returns the number of changes.

    Visitors without a stage have had no answer, order or identify yet: they get theirs on the
    first one. Reads in chunks, writes changed stages with one executemany per chunk.
    """
    stages = site_stages(site_id)
    now = utcnow()
    total = 0
    last_id = 0
    while True:
        chunk = db.session.scalars(
            select(Visitor)
            .where(
                Visitor.site_id == site_id,
                Visitor.id > last_id,
                Visitor.stage.is_not(None),
                Visitor.merged_into_id.is_(None),
            )
            .order_by(Visitor.id)
            .limit(RECOMPUTE_CHUNK)
        ).all()
        if not chunk:
            return total
        last_id = chunk[-1].id
        total += len(apply_stages(chunk, cause, now, stages))
        db.session.flush()
        for visitor in chunk:
            db.session.expunge(visitor)


def stage_history(visitor_id: int) -> list[StageChange]:
    """Every stage change of one visitor row, oldest first."""
    return list(
        db.session.scalars(
            select(StageChange)
            .where(StageChange.visitor_id == visitor_id)
            .order_by(StageChange.changed_at, StageChange.id)
        )
    )


def visitor_funnel(site_id: int, visitor_key: str) -> dict:
    """One visitor's stage, the facts it rests on and its complete stage history.

    A merged visitor's key shows that row's own history (ending with its change to no stage)
    and names the survivor, whose key shows the customer's current stage.

    :raise NotFound: the site has no visitor with this key.
    """
    visitor = db.session.scalar(
        select(Visitor).where(Visitor.site_id == site_id, Visitor.visitor_key == visitor_key)
    )
    if visitor is None:
        raise NotFound(
            "No visitor with this id on this site.",
            {"visitor_id": ["Unknown visitor id."]},
        )
    survivor_key = None
    if visitor.merged_into_id is not None:
        survivor_key = db.session.scalar(
            select(Visitor.visitor_key).where(Visitor.id == visitor.merged_into_id)
        )
    return {
        "visitor_id": visitor.visitor_key,
        "merged_into": survivor_key,
        "customer_id": visitor.customer_id,
        "stage": visitor.stage,
        "scores": visitor.scores or {},
        "order_count": visitor.order_count or 0,
        "total_spent": str(visitor.total_spent or 0),
        "attributes": visitor.attributes or {},
        "history": [
            {
                "from_stage": change.from_stage,
                "to_stage": change.to_stage,
                "cause": change.cause,
                "changed_at": change.changed_at.isoformat(),
            }
            for change in stage_history(visitor.id)
        ],
    }
