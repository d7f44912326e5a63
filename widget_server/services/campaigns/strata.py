"""The stratum a visitor is assigned in: what was known about them before any popup.

Decide stores it with each new assignment (``assignments.stratum``); the rollups count every
exposure and conversion under it (``stratum_metrics``), and the results compare variants within
strata (post-stratification, ``ab/stratification.py``). Only what decide knew when it assigned
the visitor goes in, so no variant can have moved it. Four components, the most telling first,
since strata too small to analyse merge along them from the last:

``visitor``  ``new`` | ``returning`` | ``customer`` (one order before) | ``repeat`` (two or more)
``device``   ``mobile`` | ``tablet`` | ``desktop`` | ``unknown`` (decide's ``device``)
``source``   ``campaign`` (``utm_*``, ``gclid``, ``fbclid`` or ``msclkid`` in the page's query),
             ``search`` (a search engine's referrer), ``referral`` (another site's),
             ``internal`` (the store's own page), ``direct`` (no referrer)
``stage``    the visitor's funnel stage key, ``-`` for none

The key is the components joined by ``|`` (funnel stage keys are slugs, without ``|``).
"""

from urllib.parse import parse_qsl, urlsplit

from .targeting import PageContext

SEPARATOR = "|"
#: The components of a key read back from the rollups; a visitor assigned before strata were
#: kept has the key ``""``, read as ``unknown`` in every component.
COMPONENTS = ("visitor", "device", "source", "stage")
UNKNOWN = "unknown"
_CAMPAIGN_PARAMETERS = ("gclid", "fbclid", "msclkid")
#: Host names (or their last labels) of the search engines most storefront traffic comes from.
_SEARCH_ENGINES = (
    "google",
    "bing",
    "duckduckgo",
    "yahoo",
    "yandex",
    "baidu",
    "ecosia",
    "qwant",
    "startpage",
    "search.brave",
)


def stratum_of(page: PageContext, referrer: str | None) -> str:
    """The stratum key of a visitor assigned on ``page`` (decide's context), coming from
    ``referrer``."""
    if page.order_count >= 2:
        visitor = "repeat"
    elif page.order_count == 1:
        visitor = "customer"
    else:
        visitor = "new" if page.is_new else "returning"
    source = traffic_source(page.url, referrer)
    return key(visitor, page.device or UNKNOWN, source, page.stage or "-")


def key(visitor: str, device: str, source: str, stage: str) -> str:
    """The stored key of a stratum's components."""
    return SEPARATOR.join((visitor, device, source, stage))


def traffic_source(url: str, referrer: str | None) -> str:
    """Where the visit came from, by the page's query and the referrer's host."""
    page = urlsplit(url)
    names = {name.lower() for name, _ in parse_qsl(page.query, keep_blank_values=True)}
    if any(name.startswith("utm_") for name in names) or names & set(_CAMPAIGN_PARAMETERS):
        return "campaign"
    if not referrer:
        return "direct"
    host = (urlsplit(referrer).hostname or "").lower()
    if not host:
        return "direct"
    if host == (page.hostname or "").lower():
        return "internal"
    if any(f".{engine}." in f".{host}." for engine in _SEARCH_ENGINES):
        return "search"
    return "referral"


def components(stored: str | None) -> tuple[str, ...]:
    """A stored key as its components (``unknown`` for visitors assigned before strata)."""
    parts = (stored or "").split(SEPARATOR)
    if len(parts) != len(COMPONENTS):
        return (UNKNOWN,) * len(COMPONENTS)
    return tuple(parts)
