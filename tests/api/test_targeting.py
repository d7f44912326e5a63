"""URL targeting patterns: the regex semantics they always had, in time linear in the URL."""

import re
import timeit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.api.helpers import decide
from widget_server.schemas.campaigns import URL_PATTERN_MAX_STARS, URL_PATTERNS_MAX
from widget_server.services.campaigns import site_config
from widget_server.services.campaigns.url_patterns import UrlPattern, fold

URL_LENGTH = 4096  # the longest URL decide accepts


def regex_reference(pattern: str) -> re.Pattern:
    """The regex a pattern was compiled into before, kept as the definition of what it matches
    (its backtracking is why it was replaced: only ever run it on short inputs)."""
    body = ".*".join(re.escape(part) for part in pattern.split("*"))
    if pattern.startswith("/"):
        return re.compile(rf"^(?:[a-z]+://[^/]+)?{body}(?:[?#].*)?$", re.IGNORECASE)
    return re.compile(rf"^{body}$", re.IGNORECASE)


# -- what a pattern matches -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "url", "expected"),
    [
        # A leading slash: the path, on any host and scheme, or a bare path.
        ("/products/*", "https://shop.example/products/mug", True),
        ("/products/*", "http://other.example:8080/products/", True),
        ("/products/*", "/products/mug", True),
        ("/products/*", "https://shop.example/cart", False),
        ("/products/*", "https://shop.example/en/products/mug", False),
        ("/cart", "https://shop.example/my/cart", False),
        ("/cart", "https://shop.example/cart/items", False),
        ("/", "https://shop.example/", True),
        ("/", "https://shop.example", False),
        ("/*", "https://shop.example", False),
        ("/a", "//shop.example/a", False),
        # ... followed by any query or fragment.
        ("/checkout", "https://shop.example/checkout?step=2", True),
        ("/checkout", "https://shop.example/checkout#pay", True),
        ("/checkout*", "https://shop.example/checkout?step=2", True),
        ("/checkout", "https://shop.example/checkoutx?step=2", False),
        ("/p?", "https://shop.example/p??x", True),
        ("/p?", "https://shop.example/p", False),
        ("/*/reviews", "https://shop.example/mug/reviews?page=2", True),
        ("/a*b", "https://shop.example/a/x?y#b", True),
        # Otherwise the whole URL, query included.
        ("https://shop.example/sale*", "https://shop.example/sale/x", True),
        ("https://shop.example/sale*", "https://other.example/sale", False),
        ("https://shop.example/sale", "https://shop.example/sale?x=1", False),
        ("*sale*", "https://shop.example/summer-sale?x", True),
        ("*", "", True),
        ("shop.example*", "https://shop.example/", False),
        # Letters compare without case, as re.IGNORECASE does: one character for one.
        ("/CART", "HTTPS://SHOP.EXAMPLE/cart", True),
        ("/ſale", "https://shop.example/SALE", True),
        ("/i", "https://shop.example/İ", True),
        ("/σ", "https://shop.example/ς", True),
        ("/straße", "https://shop.example/STRASSE", False),
        # A star stops at a line feed; one trailing line feed is ignored (regex ``$``).
        ("/cart*", "https://shop.example/cart\nx", False),
        ("*", "a\nb", False),
        ("/cart", "https://shop.example/cart\n", True),
        ("/cart", "https://shop.example/cart\n\n", False),
        ("/cart?*", "https://shop.example/cart?a\n", True),
        ("/a\nb", "https://shop.example/a\nb", True),
    ],
)
def test_pattern_matches_what_its_regex_matched(pattern, url, expected):
    assert bool(regex_reference(pattern).search(url)) is expected
    assert UrlPattern(pattern).matches(url) is expected


#: Characters that exercise every rule: stars, slashes, query and fragment starts, line feeds, a
#: scheme, and letters whose case classes are not one upper and one lower (ſ/s, K/k, ı/İ/i, σ/ς/Σ).
ALPHABET = "ab/:?#.\nsSſkK\u212aiIıİσςΣ"
URL_PARTS = st.text(alphabet=ALPHABET, max_size=12)
PATTERN_PARTS = st.text(alphabet=ALPHABET + "**", min_size=1, max_size=10)


@settings(max_examples=600, deadline=None)
@given(
    pattern=st.tuples(st.sampled_from(["", "/"]), PATTERN_PARTS).map("".join),
    url=st.tuples(st.sampled_from(["", "https://h", "hTTp://h/", "a://"]), URL_PARTS).map("".join),
)
def test_pattern_agrees_with_regex_reference(pattern, url):
    assert UrlPattern(pattern).matches(url) == bool(regex_reference(pattern).search(url))


@settings(max_examples=500, deadline=None)
@given(
    a=st.one_of(st.sampled_from(ALPHABET), st.characters(blacklist_categories=("Cs",))),
    b=st.one_of(st.sampled_from(ALPHABET), st.characters(blacklist_categories=("Cs",))),
)
def test_fold_equates_exactly_the_characters_ignorecase_equates(a, b):
    assert (fold(a) == fold(b)) == bool(re.fullmatch(re.escape(a), b, re.IGNORECASE))


def test_every_character_folds_to_one_ignorecase_equal_character():
    every_character = "".join(chr(code) for code in range(0x110000) if not 0xD800 <= code < 0xE000)
    folded = fold(every_character)
    assert len(folded) == len(every_character)
    for char, representative in zip(every_character, folded, strict=True):
        if char != representative:
            assert re.fullmatch(re.escape(char), representative, re.IGNORECASE), hex(ord(char))


# -- what a pattern costs ---------------------------------------------------------------------

#: A product page with a long tracking query, 4,096 characters.
NORMAL_URL = (
    "https://shop.example/products/mug?" + "&".join(f"utm_param_{i}=value-{i}" for i in range(300))
)[:URL_LENGTH]

#: Patterns, each with a builder of a URL of a given length made to cost the most: the regex the
#: most backtracking (a long run the stars must skip, then a near miss), or this matcher the most
#: scans (every piece found, the last one only before a query) or folding (letters not ASCII).
CRAFTED = [
    ("/*", lambda n: "https://h/" + "?" * (n - 12) + "\nx"),
    ("/*", lambda n: "/" + "#?" * (n // 2 - 1) + "\n"),
    ("/*", lambda n: "https://shop.example/" + "é?" * ((n - 21) // 2)),
    ("/*/*/*/*x", lambda n: "https://h" + "/" * (n - 9)),
    ("/*/*/*/*x", lambda n: "/" + "/x" * (n // 2 - 1) + "y"),
    ("*a*a*a*a*b", lambda n: "a" * n),
    ("/*a*a*a*a*b", lambda n: "/" + "a" * (n - 1)),
    ("/*x?", lambda n: "/" + "x?" * (n // 2 - 1) + "y"),
    ("/products/*a?b", lambda n: "https://shop.example/products/" + "a?" * ((n - 30) // 2)),
    ("/*" + "ab" * 200, lambda n: "/" + "ab" * (n // 2 - 1) + "a"),
    ("/*/" * URL_PATTERN_MAX_STARS, lambda n: "https://h" + "/" * (n - 10) + "x"),
]
CRAFTED_IDS = [f"{pattern[:12]}-{i}" for i, (pattern, _) in enumerate(CRAFTED)]


def cost_s(pattern: UrlPattern, url: str) -> float:
    """The fastest of several timings of one match: the least disturbed by other processes."""
    return min(timeit.repeat(lambda: pattern.matches(url), number=100, repeat=15)) / 100


@pytest.mark.parametrize(("pattern", "crafted_url"), CRAFTED, ids=CRAFTED_IDS)
def test_matching_a_crafted_url_costs_time_linear_in_its_length(pattern, crafted_url):
    """A URL 4 times as long costs about 4 times the work, never 8 (a backtracking regex: 16
    times for one star, 256 times for four); the margin absorbs a busy machine's noise."""
    compiled = UrlPattern(pattern)
    long_url, quarter_url = crafted_url(URL_LENGTH), crafted_url(URL_LENGTH // 4)
    assert URL_LENGTH - 2 <= len(long_url) <= URL_LENGTH
    assert cost_s(compiled, long_url) < 8 * cost_s(compiled, quarter_url)


def test_regex_reference_backtracks_on_a_crafted_url():
    """The crafted URLs are adversarial: as a regex, ``/*`` costs quadratic time on one (a 4 KB
    one took 0.4 s); at 1,000 characters the regex is already far slower than the matcher."""
    pattern, crafted_url = CRAFTED[0]
    url = crafted_url(1000)
    regex = regex_reference(pattern)
    as_regex = min(timeit.repeat(lambda: regex.search(url), number=3, repeat=3)) / 3
    assert as_regex > 20 * cost_s(UrlPattern(pattern), url)


def test_decide_answers_the_worst_crafted_url_within_five_times_a_normal_one(
    client, make_site, make_campaign
):
    site = make_site()
    make_campaign(
        site,
        targeting={
            "url_include": [pattern for pattern, _ in CRAFTED],
            "url_exclude": ["/*/*/*/*/*/*/*/*/*/*nope"],
        },
    )

    def decide_s(url: str) -> float:
        def once():
            assert decide(client, site, url=url).status_code == 200

        return min(timeit.repeat(once, number=1, repeat=15))  # the least disturbed

    normal = decide_s(NORMAL_URL)
    worst = max(decide_s(crafted_url(URL_LENGTH)) for _, crafted_url in CRAFTED)
    assert worst < 5 * normal, (worst, normal)


def test_patterns_are_compiled_once_per_cached_site_config(
    app, client, make_site, make_campaign, monkeypatch
):
    compiled = []

    class CountingUrlPattern(UrlPattern):
        __slots__ = ()

        def __init__(self, text):
            compiled.append(text)
            super().__init__(text)

    monkeypatch.setattr(site_config, "UrlPattern", CountingUrlPattern)
    monkeypatch.setitem(app.config, "CONFIG_CACHE_TTL_S", 60.0)
    site = make_site()
    make_campaign(site, targeting={"url_include": ["/products/*"], "url_exclude": ["/*/x"]})
    try:
        for product in ("mug", "cup", "x"):
            decide(client, site, url=f"https://shop.example/products/{product}")
    finally:
        site_config.invalidate(site["site_key"])
    assert sorted(compiled) == ["/*/x", "/products/*"]


# -- bounds on patterns -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("targeting", "field"),
    [
        ({"url_include": ["/a" + "*" * (URL_PATTERN_MAX_STARS + 1)]}, "targeting.url_include.0"),
        ({"url_exclude": ["/ok", "*/" * (URL_PATTERN_MAX_STARS + 1)]}, "targeting.url_exclude.1"),
        ({"url_include": ["/" + "a" * 500]}, "targeting.url_include.0"),
        ({"url_include": [""]}, "targeting.url_include.0"),
        ({"url_exclude": [f"/p{i}" for i in range(URL_PATTERNS_MAX + 1)]}, "targeting.url_exclude"),
    ],
)
def test_unbounded_url_patterns_are_refused_naming_the_field(admin, make_site, targeting, field):
    site = make_site()
    body = {"name": "C", "kind": "survey", "targeting": targeting}
    response = admin.post(f"/api/v1/admin/sites/{site['id']}/campaigns", json=body)
    assert response.status_code == 400, response.json
    assert field in response.json["error"]["fields"], response.json["error"]["fields"]


def test_patterns_at_the_bounds_are_accepted(admin, make_site):
    site = make_site()
    targeting = {
        "url_include": ["/" + "*" * URL_PATTERN_MAX_STARS, "/" + "a" * 499],
        "url_exclude": [f"/p{i}" for i in range(URL_PATTERNS_MAX)],
    }
    body = {"name": "C", "kind": "survey", "targeting": targeting}
    response = admin.post(f"/api/v1/admin/sites/{site['id']}/campaigns", json=body)
    assert response.status_code == 201, response.json
