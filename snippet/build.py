"""Build the snippet's two served files from their readable sources in this folder.

``snippet/widget.js`` (the loader every page runs) and ``snippet/render.js`` (the popup, fetched
only when decide offers one) are minified with calmjs.parse (local names shortened, comments and
spaces dropped). The renderer is written as ``static/widget-render.<hash>.js``, its name carrying
its content's hash so that it can be cached for good, and the loader as ``static/widget.js`` with
that name filled in. Both are committed, so that serving and packaging need no build step;
``tests/widget/test_snippet_source.py`` fails when they differ from what this script makes.

The renderer the previous loader names stays in ``static/`` until the next build: a page whose
cached ``widget.js`` (5 minutes) still names it gets it, not a 404.

Run: ``python snippet/build.py`` (writes) or ``python snippet/build.py --check`` (exit 1 on a
difference). Needs the ``test`` extra (``pip install -e '.[test]'``).
"""

import argparse
import hashlib
import re
import sys
from pathlib import Path

from calmjs.parse import es5
from calmjs.parse.unparsers.es5 import minify_print

HERE = Path(__file__).resolve().parent
STATIC = HERE.parent / "static"
LOADER_SOURCE = HERE / "widget.js"
RENDERER_SOURCE = HERE / "render.js"
#: The string in the loader's source that becomes the renderer's file name.
RENDERER_PLACEHOLDER = "RENDERER_FILE"
RENDERER_PATTERN = "widget-render.*.js"


def minify(source: str) -> str:
    """ES5 source without comments and spaces, its local names shortened; one line."""
    return minify_print(es5(source), obfuscate=True, obfuscate_globals=False) + "\n"


def build() -> dict[Path, str]:
    """What the built files hold: ``{path under static/: text}``, the loader and the renderer."""
    renderer = minify(RENDERER_SOURCE.read_text())
    digest = hashlib.sha256(renderer.encode()).hexdigest()[:12]
    renderer_name = f"widget-render.{digest}.js"
    loader_source = LOADER_SOURCE.read_text()
    if loader_source.count(f"'{RENDERER_PLACEHOLDER}'") != 1:
        raise ValueError(f"{LOADER_SOURCE} must name '{RENDERER_PLACEHOLDER}' once")
    loader = minify(loader_source.replace(RENDERER_PLACEHOLDER, renderer_name))
    return {STATIC / "widget.js": loader, STATIC / renderer_name: renderer}


def renderer_named_by_loader() -> Path | None:
    """The renderer the loader now in ``static/`` fetches (None before the first build)."""
    loader = STATIC / "widget.js"
    if not loader.is_file():
        return None
    found = re.search(r"widget-render\.[0-9a-f]+\.js", loader.read_text())
    return STATIC / found.group(0) if found else None


def differences(built: dict[Path, str]) -> list[str]:
    """The built files that are missing or differ in ``static/``, and stale renderers there
    (more than the one previous release's)."""
    found = [
        path.name for path, text in built.items() if not path.is_file() or path.read_text() != text
    ]
    others = [path for path in STATIC.glob(RENDERER_PATTERN) if path not in built]
    if len(others) > 1:
        found += [f"{path.name} (stale)" for path in sorted(others)]
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if static/ differs"
    )
    args = parser.parse_args(argv)
    built = build()
    changed = differences(built)
    if args.check:
        if changed:
            print("static/ differs from snippet/ (run python snippet/build.py):", *changed)
            return 1
        return 0
    previous = renderer_named_by_loader()
    for path in STATIC.glob(RENDERER_PATTERN):
        if path not in built and path != previous:
            path.unlink()
    for path, text in built.items():
        path.write_text(text)
        print(f"static/{path.name}: {len(text.encode())} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
