"""The README documents every setting (datasette's habit: an undocumented setting fails a test)."""

import re
from pathlib import Path

import config

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()
CONFIG_SOURCE = Path(config.__file__).read_text()


def test_every_environment_setting_is_in_the_readme():
    names = set(re.findall(r'_env\("([A-Z_]+)"', CONFIG_SOURCE))
    names |= set(re.findall(r'environ\.get\("FUNNELCAKE_([A-Z_]+)"', CONFIG_SOURCE))
    assert {"DATABASE_URL", "SECRET_KEY", "REDIS_URL"} <= names  # the scan finds them at all
    missing = sorted(n for n in names if f"FUNNELCAKE_{n}" not in README)
    assert not missing, f"settings missing from the README's configuration table: {missing}"
