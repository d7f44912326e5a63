"""The snippet's source: its size budget (under 8 KB gzipped), what it must never contain,
and the one global it adds to the page."""

import gzip
import io
import re

import pytest

from widget_server import PROJECT_ROOT

SNIPPET = PROJECT_ROOT / "static" / "widget.js"
BUDGET_BYTES = 8192


def gzip_size(path) -> int:
    """Bytes of ``gzip -9c path``: level 9, the file name in the header as gzip(1) stores it.

    zlib and gzip(1) may differ by a few bytes; the test keeps a margin for that.
    """
    buffer = io.BytesIO()
    with gzip.GzipFile(path.name, "wb", compresslevel=9, fileobj=buffer, mtime=0) as out:
        out.write(path.read_bytes())
    return len(buffer.getvalue())


def test_snippet_stays_under_8_kb_gzipped():
    assert gzip_size(SNIPPET) < BUDGET_BYTES - 32


@pytest.mark.parametrize(
    "pattern",
    [
        r"\beval\s*\(",
        r"new Function",
        r"innerHTML|outerHTML|insertAdjacentHTML|document\.write",
        r"setAttribute\(\s*['\"]style|cssText|['\"]style['\"]\s*:",  # style attributes: CSP
        r"setTimeout\(\s*['\"]",  # a string timer is an eval
        r"\bimport\s*\(|importScripts",  # it loads nothing else
    ],
)
def test_snippet_uses_nothing_a_strict_csp_or_the_house_style_forbids(pattern):
    assert not re.search(pattern, SNIPPET.read_text()), pattern


@pytest.mark.browser
def test_the_only_global_it_adds_is_the_queue_function(live_server, new_page):
    without = new_page()
    without.route("**/static/widget.js", lambda route: route.fulfill(body="", status=200))
    without.goto(f"{live_server.url}/demo/checkout")
    page = new_page()
    page.goto(f"{live_server.url}/demo/checkout")
    page.wait_for_function("window.funnelcake && window.funnelcake.loaded")
    names = "Object.getOwnPropertyNames(window)"
    assert set(page.evaluate(names)) - set(without.evaluate(names)) == {"funnelcake"}
