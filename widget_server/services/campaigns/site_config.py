"""A site's running campaigns, compiled once and cached per worker for the hot paths.

Decide and events need the site, its origins and its running campaigns on every request. They are
read in one query, compiled (URL patterns to matchers, public content stripped of reward secrets),
and cached for ``CONFIG_CACHE_TTL_S`` seconds. Admin writes call :func:`invalidate`, which clears
this worker's copy at once; every change also raises the site's ``config_version`` in its own
transaction, and other workers (and hosts) compare their copy's version with it every
``CONFIG_CHECK_S`` seconds, so a change made anywhere (a promotion by ``funnelcake worker``)
reaches them within that. The cache lives on
the app (``app.extensions``), so two apps in one process (tests, a second site) never share it.
"""

import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cached_property

from flask import current_app
from sqlalchemy import event, or_, select, update
from sqlalchemy.orm import Session, selectinload

from ...errors import NotFound
from ...extensions import db
from ...models import Campaign, FunnelStage, Site, Variant
from ..funnel.rules import Facts, from_targeting, stage_for
from ..funnel.stages import site_stages
from ..platform.changes import site_changed
from ..platform.reconnect import once_more_if_disconnected
from .phases import phase_ends, rerandomized_since
from .url_patterns import UrlPattern


@dataclass(frozen=True)
class VariantConfig:
    id: int
    name: str
    weight: float
    is_control: bool
    #: Content as the browser may see it (wheel rewards stripped).
    public_content: dict
    #: Content as stored, for the server's own decisions (a wheel's slices with their rewards).
    content: dict


@dataclass(frozen=True)
class CampaignConfig:
    id: int
    kind: str
    priority: int
    seed: str
    targeting: dict
    url_include: tuple[UrlPattern, ...]
    url_exclude: tuple[UrlPattern, ...]
    #: ``targeting.attributes`` as ``(key, rule)`` pairs in the funnel's rule language.
    attribute_rules: tuple[tuple[str, dict], ...]
    trigger: dict
    frequency: dict
    holdout: float
    variants: tuple[VariantConfig, ...]
    promoted_variant_id: int | None
    #: The current phase, and the latest phase that re-randomised the assignments (0: none):
    #: an assignment made before that one is assigned afresh.
    phase: int = 1
    rerandomized_phase: int = 0
    #: ``{phase: ended at}`` of the earlier phases: what happens after counts nowhere.
    phase_ends: dict = field(default_factory=dict)

    def variant(self, variant_id: int | None) -> VariantConfig | None:
        return next((v for v in self.variants if v.id == variant_id), None)

    @cached_property
    def encoded_offers(self) -> dict[int, str]:
        """Variant id -> the offer's JSON, filled by decide as variants are first offered."""
        return {}


@dataclass(frozen=True)
class SiteConfig:
    id: int
    site_key: str
    allowed_origins: frozenset[str]
    settings: dict
    campaigns: tuple[CampaignConfig, ...] = field(default_factory=tuple)
    #: The stage of a visitor with no facts yet (no answers, orders or attributes): decide
    #: targets them as in it, as the funnel figures count them, without a row written for each.
    entry_stage: str | None = None
    #: ``sites.config_version`` when this copy was loaded.
    version: int = 0
    #: A visitor first seen less than this ago is new (``NEW_VISITOR_WINDOW_MIN``).
    new_visitor_window: timedelta = timedelta(minutes=30)
    #: The store platform whose cart the snippet writes the visitor id into (the site's
    #: ``integrations.<platform>.link_cart``), answered by decide; None: off.
    link_cart: str | None = None

    @cached_property
    def campaign_of_variant(self) -> dict[int, int]:
        """Variant id -> campaign id of the running campaigns (facts that never change)."""
        return {v.id: c.id for c in self.campaigns for v in c.variants}

    @cached_property
    def _promoted(self) -> dict[int, int]:
        return {c.id: c.promoted_variant_id for c in self.campaigns if c.promoted_variant_id}

    def promoted_variant_of(self, campaign_id: int) -> int | None:
        """The winner every visitor of a running campaign is shown since its promotion."""
        return self._promoted.get(campaign_id)


#: Where each app keeps its :class:`SiteConfigCache`, in ``app.extensions``.
EXTENSION_KEY = "funnelcake.site_config"


class SiteConfigCache:
    """One app's compiled site configurations, each with the monotonic time it expires at.

    When a configuration expires, one request reloads it while the others go on with the
    expired copy for those few milliseconds: under load a whole worker's requests reloading
    together cost a query and a connection each (and, holding those connections, they could
    leave none for the events' group commit). An invalidated site has no copy: the next request
    loads it. Between expiries, one request every ``CONFIG_CHECK_S`` compares the copy's version
    with the stored one (:meth:`check_due`), so a change made elsewhere arrives within that.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[float, SiteConfig | None]] = {}
        self._reloading: set[str] = set()
        self._checked_at: dict[str, float] = {}

    def get(self, site_key: str, now: float) -> tuple[bool, SiteConfig | None]:
        """``(found, config)``: found is False when the caller should load the site (it is not
        cached, or it expired and nobody reloads it yet); a cached ``None`` remembers an unknown
        key for the TTL too."""
        cached = self._entries.get(site_key)
        if cached is None:
            return False, None
        if cached[0] > now:
            return True, cached[1]
        with self._lock:
            if site_key in self._reloading:
                return True, cached[1]
            self._reloading.add(site_key)
        return False, None

    def put(self, site_key: str, expires_at: float, config: SiteConfig | None) -> None:
        """Cache ``config`` (just loaded: its version needs no check for a while)."""
        with self._lock:
            self._entries[site_key] = (expires_at, config)
            self._checked_at[site_key] = time.monotonic()

    def check_due(self, site_key: str, now: float, every_s: float) -> bool:
        """True for one caller once ``every_s`` has passed since the last check of this site."""
        with self._lock:
            last = self._checked_at.get(site_key)
            if last is not None and now - last < every_s:
                return False
            self._checked_at[site_key] = now
            return True

    def loaded(self, site_key: str) -> None:
        """The caller that :meth:`get` asked to load ``site_key`` is done (or failed)."""
        with self._lock:
            self._reloading.discard(site_key)

    def drop(self, site_key: str | None = None) -> None:
        with self._lock:
            if site_key is None:
                self._entries.clear()
            else:
                self._entries.pop(site_key, None)


def app_cache() -> SiteConfigCache:
    """The current app's cache, made on its first use."""
    found = current_app.extensions.get(EXTENSION_KEY)
    if found is None:
        found = current_app.extensions.setdefault(EXTENSION_KEY, SiteConfigCache())
    return found


def get_site_config(site_key: str) -> SiteConfig:
    """The compiled configuration of the site with this public key.

    :raise NotFound: no site has this key.
    """
    ttl = current_app.config["CONFIG_CACHE_TTL_S"]
    now = time.monotonic()
    cache = app_cache()
    found, config = cache.get(site_key, now)
    if (
        found
        and config is not None
        and cache.check_due(site_key, now, current_app.config["CONFIG_CHECK_S"])
        and _released(lambda: _stored_version(config.id)) != config.version
    ):
        cache.drop(site_key)  # changed elsewhere: another worker, the worker's promotion
        found, config = cache.get(site_key, now)
    if not found:
        try:
            config = _released(lambda: _load(site_key))
            if ttl > 0:
                cache.put(site_key, now + ttl, config)
        finally:
            cache.loaded(site_key)
    if config is None:
        raise NotFound("No site with this key.", {"site_key": ["Unknown site key."]})
    return config


def invalidate(site_key: str | None = None) -> None:
    """Forget the current app's cached configuration of one site (or all), after an admin
    change."""
    app_cache().drop(site_key)


@site_changed.connect
def _forget_changed_site(sender, site_key: str, **_) -> None:
    invalidate(site_key)


def _released(read):
    """``read()`` through the session, handing its connection back at once when the request had
    none: the events endpoint reads nothing else, and a connection held to the end of each
    request that reloaded the site is one fewer for the writes."""
    had_transaction = db.session().in_transaction()
    result = once_more_if_disconnected(read)
    if not had_transaction:
        db.session.rollback()
    return result


def _stored_version(site_id: int) -> int | None:
    return db.session.scalar(select(Site.config_version).where(Site.id == site_id))


@event.listens_for(Session, "after_flush")
def _raise_config_versions(session, flush_context) -> None:
    """Raise ``config_version`` of every site whose cached configuration this flush changes (its
    settings, a campaign, a variant, a funnel stage), in the flush's own transaction: a change
    rolled back raises nothing, and no writer has to remember to announce it."""
    site_ids: set[int] = set()
    campaign_ids: set[int] = set()
    for obj in (*session.new, *session.dirty, *session.deleted):
        if isinstance(obj, Site):
            site_ids.add(obj.id)
        elif isinstance(obj, Campaign | FunnelStage):
            site_ids.add(obj.site_id)
        elif isinstance(obj, Variant):
            campaign_ids.add(obj.campaign_id)
    site_ids.discard(None)
    campaign_ids.discard(None)
    if not site_ids and not campaign_ids:
        return
    of_campaigns = select(Campaign.site_id).where(Campaign.id.in_(campaign_ids))
    session.connection().execute(
        update(Site)
        .where(or_(Site.id.in_(site_ids), Site.id.in_(of_campaigns)))
        .values(config_version=Site.config_version + 1)
        .execution_options(synchronize_session=False)
    )


def _load(site_key: str) -> SiteConfig | None:
    site = db.session.scalar(select(Site).where(Site.site_key == site_key))
    if site is None:
        return None
    campaigns = db.session.scalars(
        select(Campaign)
        .where(Campaign.site_id == site.id, Campaign.status == "running")
        .options(selectinload(Campaign.variants))
        .order_by(Campaign.priority.desc(), Campaign.id)
    ).all()
    return SiteConfig(
        id=site.id,
        site_key=site.site_key,
        allowed_origins=frozenset(o.lower().rstrip("/") for o in site.allowed_origins or ()),
        settings=dict(site.settings or {}),
        campaigns=tuple(compile_campaign(c) for c in campaigns),
        entry_stage=stage_for(site_stages(site.id), Facts()),
        version=site.config_version,
        new_visitor_window=timedelta(minutes=current_app.config["NEW_VISITOR_WINDOW_MIN"]),
        link_cart=cart_linking_platform(site.integrations or {}),
    )


def cart_linking_platform(integrations: dict) -> str | None:
    """The platform whose ``link_cart`` is on (at most one: the admin API refuses two)."""
    return next((name for name, values in integrations.items() if values.get("link_cart")), None)


def compile_campaign(campaign: Campaign) -> CampaignConfig:
    targeting = campaign.targeting or {}
    return CampaignConfig(
        id=campaign.id,
        kind=campaign.kind,
        priority=campaign.priority,
        seed=campaign.seed,
        targeting=targeting,
        url_include=tuple(UrlPattern(p) for p in targeting.get("url_include", ())),
        url_exclude=tuple(UrlPattern(p) for p in targeting.get("url_exclude", ())),
        attribute_rules=tuple(
            (rule["key"], from_targeting(rule)) for rule in targeting.get("attributes", ())
        ),
        trigger=campaign.trigger or {"type": "delay", "seconds": 3},
        frequency=campaign.frequency or {},
        holdout=float((campaign.ab or {}).get("holdout_percent", 0.0)) / 100.0,
        variants=tuple(
            VariantConfig(
                id=v.id,
                name=v.name,
                weight=v.weight,
                is_control=v.is_control,
                public_content=public_content(campaign.kind, v.content),
                content=v.content,
            )
            for v in campaign.variants
        ),
        promoted_variant_id=campaign.promoted_variant_id,
        phase=campaign.phase,
        rerandomized_phase=rerandomized_since(campaign.phase_history, 0) or 0,
        phase_ends=phase_ends(campaign.phase, campaign.phase_started_at, campaign.phase_history),
    )


def public_content(kind: str, content: dict) -> dict:
    """The content the browser may see: a wheel's codes and pools stay on the server."""
    if kind != "wheel":
        return content
    public = {k: v for k, v in content.items() if k != "slices"}
    public["slices"] = [
        {"label": s.get("label"), "color": s.get("color")} for s in content.get("slices", [])
    ]
    return public
