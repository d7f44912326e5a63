"""The README documents every setting and command (datasette's habit: an undocumented one fails a
test), refers to nothing outside the repository, and shows what the demo really prints."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import config

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
CONFIG_SOURCE = Path(config.__file__).read_text()


def test_every_environment_setting_is_in_the_readme():
    names = set(re.findall(r'_env\("([A-Z_]+)"', CONFIG_SOURCE))
    names |= set(re.findall(r'environ\.get\("FUNNELCAKE_([A-Z_]+)"', CONFIG_SOURCE))
    assert {"DATABASE_URL", "SECRET_KEY", "REDIS_URL"} <= names  # the scan finds them at all
    missing = sorted(n for n in names if f"FUNNELCAKE_{n}" not in README)
    assert not missing, f"settings missing from the README's configuration table: {missing}"


def section(title: str) -> str:
    """The README's ``## <title>`` section, up to the next ``## ``."""
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start : end if end != -1 else len(README)]


def test_readme_starts_with_the_two_commands_of_the_makefile():
    first_block = README.split("```sh\n", 1)[1].split("```", 1)[0].splitlines()
    assert [line.split()[:2] for line in first_block] == [["make", "demo"], ["make", "test"]]
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"(?m)^demo:", makefile) and re.search(r"(?m)^test:", makefile)


def test_readme_leads_with_the_store_then_the_api_then_the_statistics():
    order = [
        "The demo",
        "The snippet (for the store's developer)",
        "The admin page (for the store's owner)",
        "Deployment",
        "HTTP API",
        "Configuration",
        "Statistics",
        "Benchmarks",
        "Threat model",
        "Development",
    ]
    positions = [README.index(f"\n## {title}\n") for title in order]
    assert positions == sorted(positions)


@pytest.mark.parametrize(
    "outside",
    [r"\.\./", r"\bSPEC\b", r"§", r"(?i)\bissue\s+(?:#?\d|note)", r"/work/", r"\bshared/"],
)
def test_readme_refers_to_nothing_outside_the_repository(outside):
    assert not re.search(outside, README), re.search(outside, README).group(0)


def test_every_file_the_readme_names_is_in_the_repository():
    named = set(re.findall(r"`((?:[\w.-]+/)+[\w.-]+\.(?:md|py|js|toml|cfg))", README))
    named |= set(re.findall(r"`((?:docs|tests|bench|widget_server|ab|static)/[\w./-]+)`", README))
    assert named, "the scan finds the README's file names"
    missing = sorted(name for name in named if not (ROOT / name.rstrip("/")).exists())
    assert not missing


def test_every_command_and_demo_option_is_in_the_readme():
    from widget_server.commands import commands, demo_command

    ours = set(commands.commands)
    missing = sorted(name for name in ours if f"funnelcake {name}" not in README)
    assert not missing
    options = {opt for param in demo_command.params for opt in param.opts if opt.startswith("--")}
    assert options == {"--host", "--port", "--no-serve", "--empty"}
    assert not sorted(option for option in options if option not in section("The demo"))


def demo_block() -> list[str]:
    """The lines the README says ``funnelcake demo`` prints."""
    demo = section("The demo")
    return demo.split("prints:\n\n```\n", 1)[1].split("```", 1)[0].splitlines()


def test_readme_demo_output_is_what_the_demo_prints(tmp_path):
    """Run the demo's first run as a newcomer would (fresh instance folder, nothing set) and
    compare its output with the README's block: the same lines in the same order, each equal to
    the README's, where ``…`` stands for what differs per run (paths, token, password)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FUNNELCAKE_")}
    env["FUNNELCAKE_INSTANCE_DIR"] = str(tmp_path / "instance")
    result = subprocess.run(
        [sys.executable, "-m", "widget_server", "demo", "--no-serve"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    printed = result.stdout.splitlines()
    expected = demo_block()
    assert [line.split(":", 1)[0] for line in printed] == [
        line.split(":", 1)[0] for line in expected
    ]
    for line, shown in zip(printed, expected, strict=True):
        pattern = ".+".join(re.escape(part) for part in shown.split("…"))
        assert re.fullmatch(pattern, line), (line, shown)
