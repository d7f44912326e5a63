"""One build step on top of pyproject.toml: put ``static/`` and ``migrations/`` into the wheel.

Both stay at the top of the source tree (the snippet is ``static/widget.js`` as the product's
design names it), so a wheel would leave them behind and an installed ``funnelcake`` would serve
no snippet and find no migrations. The build copies them into ``widget_server/`` inside the
wheel, where ``widget_server.STATIC_DIR`` and ``MIGRATIONS_DIR`` look first. An editable install
serves them from the tree and needs no copy.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
#: Top-level folders the installed package needs at run time.
BUNDLED_FOLDERS = ("static", "migrations")


class BuildPyWithBundledFolders(build_py):
    """``build_py`` that also copies :data:`BUNDLED_FOLDERS` into the built ``widget_server``."""

    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return
        for name in BUNDLED_FOLDERS:
            shutil.copytree(
                ROOT / name,
                Path(self.build_lib, "widget_server", name),
                dirs_exist_ok=True,
                ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
            )


setup(cmdclass={"build_py": BuildPyWithBundledFolders})
