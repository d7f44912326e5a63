"""``pip install .`` gives a working ``funnelcake demo``: the wheel carries the snippet (loader and
renderer), the admin page's assets and the migrations, and the installed command serves them from
any directory."""

import re
import subprocess
import sys
import sysconfig
import urllib.error
import urllib.request
import venv
from pathlib import Path

import pytest

from tests.helpers import free_port, server_environment, wait_for_server

ROOT = Path(__file__).resolve().parents[1]
#: What pip prints when it cannot download the build requirements (setuptools, wheel).
OFFLINE_SIGNS = (
    "Could not find a version that satisfies the requirement",
    "No matching distribution found",
    "NewConnectionError",
    "Temporary failure in name resolution",
)

pytestmark = pytest.mark.package


def clean_checkout(target: Path) -> Path:
    """Copy the files git knows (tracked, or new and not ignored) as a clone would have them,
    so that no ``build/``, ``instance/`` or egg-info of the working tree reaches the wheel."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
    )
    if listed.returncode != 0:
        pytest.skip(f"not a git checkout, no clean file list: {listed.stderr.decode().strip()}")
    for name in filter(None, listed.stdout.decode().split("\0")):
        source = ROOT / name
        if source.is_file():  # a file deleted but not yet committed is still listed
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            (target / name).write_bytes(source.read_bytes())
    return target


def build_wheel(source: Path, dist: Path) -> Path:
    """``pip wheel .`` with build isolation, as ``pip install .`` builds it."""
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check"]
        + ["--quiet", str(source), "--wheel-dir", str(dist)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = built.stdout + built.stderr
    if built.returncode != 0 and any(sign in output for sign in OFFLINE_SIGNS):
        pytest.skip(f"cannot download setuptools and wheel to build with (offline?):\n{output}")
    assert built.returncode == 0, output
    [wheel] = dist.glob("funnelcake-*.whl")
    return wheel


def install_in_fresh_venv(wheel: Path, target: Path) -> Path:
    """A new venv holding only the wheel; the dependencies come from this interpreter's
    site-packages through a ``.pth`` line (no download, and not this checkout's sources)."""
    venv.EnvBuilder(with_pip=False).create(target)
    python = target / "bin" / "python"
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps"]
        + ["--disable-pip-version-check", "--quiet", str(wheel)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
    site_packages = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (Path(site_packages) / "funnelcake-test-deps.pth").write_text("\n".join(sorted(ours)) + "\n")
    return target


def get(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.headers.get("Content-Type", ""), response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers.get("Content-Type", ""), err.read()


def test_installed_wheel_serves_the_demo_from_an_empty_directory(tmp_path):
    wheel = build_wheel(clean_checkout(tmp_path / "src"), tmp_path / "dist")
    environment = install_in_fresh_venv(wheel, tmp_path / "venv")
    workdir = tmp_path / "empty"
    workdir.mkdir()
    env = server_environment()
    env.pop("PYTHONPATH", None)  # the installed wheel, not this checkout
    env.pop("PYTHONHOME", None)
    where = subprocess.run(
        [str(environment / "bin" / "python"), "-c", "import widget_server as w; print(w.__file__)"],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert Path(where).is_relative_to(environment), where  # the wheel, not this checkout

    port = free_port()
    log_path = tmp_path / "demo.log"
    with open(log_path, "wb") as log:
        demo = subprocess.Popen(
            [str(environment / "bin" / "funnelcake"), "demo", "--port", str(port)],
            cwd=workdir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_server(base, demo, log_path.read_text)

        status, content_type, body = get(f"{base}/static/widget.js")
        assert (status, content_type.split(";")[0]) == (200, "text/javascript")
        assert b"'use strict'" in body
        # The popup, fetched by it (static/ keeps the previous build's renderer too).
        [renderer] = set(re.findall(rb"widget-render\.[0-9a-f]+\.js", body))
        assert (ROOT / "static" / renderer.decode()).is_file()
        status, content_type, _ = get(f"{base}/static/{renderer.decode()}")
        assert (status, content_type.split(";")[0]) == (200, "text/javascript")
        assert get(f"{base}/static/admin/admin.css")[:2] == (200, "text/css; charset=utf-8")
        status, _, page = get(f"{base}/demo/")
        assert status == 200 and b'src="/static/widget.js"' in page
        assert (workdir / "instance" / "funnelcake.db").is_file()  # migrated where it was run
    finally:
        demo.terminate()
        demo.wait(timeout=10)
