"""The snippet's two files: their size budgets (the loader every page runs under 3 KB gzipped,
the renderer, loaded only with a popup, under 6 KB), what they must never contain, that they
are what ``snippet/build.py`` makes of the sources, how they are cached, and the one global
the snippet adds to the page."""

import gzip
import importlib.util
import io
import re
import subprocess
import sys

import pytest

from widget_server import PROJECT_ROOT, RENDERER_PATH

STATIC = PROJECT_ROOT / "static"
LOADER = STATIC / "widget.js"
SOURCES = [PROJECT_ROOT / "snippet" / "widget.js", PROJECT_ROOT / "snippet" / "render.js"]
LOADER_BUDGET_BYTES = 3072
RENDERER_BUDGET_BYTES = 6144


def renderer():
    """The renderer the built loader fetches (``static/`` may also keep the previous one)."""
    [name] = set(re.findall(r"widget-render\.[0-9a-f]+\.js", LOADER.read_text()))
    return STATIC / name


def gzip_size(path) -> int:
    """Bytes of ``gzip -9c path``: level 9, the file name in the header as gzip(1) stores it.

    zlib and gzip(1) may differ by a few bytes (for these files they gave the same size); the
    test keeps a margin of 16 bytes for that.
    """
    buffer = io.BytesIO()
    with gzip.GzipFile(path.name, "wb", compresslevel=9, fileobj=buffer, mtime=0) as out:
        out.write(path.read_bytes())
    return len(buffer.getvalue())


def test_loader_stays_under_3_kb_gzipped():
    assert gzip_size(LOADER) < LOADER_BUDGET_BYTES - 16


def test_renderer_stays_under_6_kb_gzipped():
    assert gzip_size(renderer()) < RENDERER_BUDGET_BYTES - 32


def test_built_files_are_what_the_build_makes_of_the_sources():
    """Nobody edits a built file without its source, nor a source without building."""
    checked = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "snippet" / "build.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_a_build_keeps_the_renderer_the_previous_loader_names_and_drops_older_ones(
    tmp_path, monkeypatch
):
    """A page whose cached widget.js (5 minutes) names the previous renderer still gets it."""
    spec = importlib.util.spec_from_file_location("snippet_build", SOURCES[0].parent / "build.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    monkeypatch.setattr(build, "STATIC", tmp_path)
    (tmp_path / "widget.js").write_text("load('widget-render.aaaaaaaaaaaa.js')")
    (tmp_path / "widget-render.aaaaaaaaaaaa.js").write_text("previous release")
    (tmp_path / "widget-render.bbbbbbbbbbbb.js").write_text("the release before")
    assert build.main([]) == 0
    kept = sorted(path.name for path in tmp_path.glob("widget-render.*.js"))
    assert kept == sorted(["widget-render.aaaaaaaaaaaa.js", renderer().name])
    assert build.main(["--check"]) == 0
    (tmp_path / "widget-render.bbbbbbbbbbbb.js").write_text("the release before")
    assert build.main(["--check"]) == 1  # two old ones: one is stale


def test_loader_names_the_renderer_beside_it():
    assert f"'{renderer().name}'" in LOADER.read_text()


@pytest.mark.parametrize(
    "pattern",
    [
        r"\beval\s*\(",
        r"new Function",
        r"innerHTML|outerHTML|insertAdjacentHTML|document\.write",
        r"setAttribute\(\s*['\"]style|cssText|['\"]style['\"]\s*:",  # style attributes: CSP
        r"setTimeout\(\s*['\"]",  # a string timer is an eval
        r"\bimport\s*\(|importScripts",  # no modules: the renderer comes by a script element
    ],
)
@pytest.mark.parametrize("name", ["widget.js", "render.js", "built widget.js", "built renderer"])
def test_snippet_uses_nothing_a_strict_csp_or_the_house_style_forbids(pattern, name):
    path = {"built widget.js": LOADER, "built renderer": renderer()}.get(name)
    text = (path or PROJECT_ROOT / "snippet" / name).read_text()
    assert not re.search(pattern, text), pattern


def test_loader_is_cached_briefly_and_the_renderer_for_good(client):
    with client.get("/static/widget.js") as loader:
        assert loader.status_code == 200
        assert loader.headers["Cache-Control"] == "public, max-age=300"
    path = f"/static/{renderer().name}"
    assert RENDERER_PATH.fullmatch(path)
    with client.get(path) as answer:
        assert answer.status_code == 200
        assert answer.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        assert answer.headers["Access-Control-Allow-Origin"] == "*"
    with client.get("/static/widget-render.0000000000aa.js") as missing:  # a retired name
        assert missing.status_code == 404
        assert "immutable" not in missing.headers.get("Cache-Control", "")


@pytest.mark.browser
def test_the_only_global_it_adds_is_the_queue_function(live_server, new_page):
    """On a page with a popup too: the renderer adds no global either."""
    without = new_page()
    without.route("**/static/widget.js", lambda route: route.fulfill(body="", status=200))
    without.clock.install()  # Playwright's clock is a global of its own, on both pages
    without.goto(f"{live_server.url}/demo/")
    page = new_page()
    page.clock.install()
    page.goto(f"{live_server.url}/demo/")
    page.wait_for_function("window.funnelcake && window.funnelcake.loaded")
    page.clock.run_for(5_000)  # past the survey's delay
    page.get_by_role("dialog").wait_for()
    names = "Object.getOwnPropertyNames(window)"
    assert set(page.evaluate(names)) - set(without.evaluate(names)) == {"funnelcake"}
