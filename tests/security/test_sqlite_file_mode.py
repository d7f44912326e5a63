"""The SQLite database (site secrets, visitors' e-mails) is created readable by its owner only,
in an instance folder others cannot list, whatever the process's umask would have given."""

import os
import stat
import subprocess
import sys

import pytest
from flask_migrate import upgrade

from tests.conftest import BASE_TEST_CONFIG
from widget_server import create_app
from widget_server.extensions import db
from widget_server.services.platform.tokens import create_token


def mode_of(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def open_umask():
    """A umask of 022, the usual one, under which SQLite alone would create a 0644 file."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def test_new_sqlite_file_and_its_folder_are_owner_only(tmp_path, open_umask):
    folder = tmp_path / "instance"
    app = create_app({**BASE_TEST_CONFIG, "DATABASE_URL": f"sqlite:///{folder / 'fc.db'}"})
    app.instance_path = str(folder)
    with app.app_context():
        upgrade(directory=app.extensions["migrate"].directory)
        create_token("writes-to-the-wal")
        # While a connection is open, WAL mode keeps -wal and -shm files beside the database.
        files = sorted(path.name for path in folder.iterdir())
        modes = {name: mode_of(folder / name) for name in files}
        db.session.remove()
        db.engine.dispose()

    assert files == ["fc.db", "fc.db-shm", "fc.db-wal"]
    assert modes == {name: 0o600 for name in files}
    assert mode_of(folder) == 0o700


def test_existing_sqlite_file_keeps_its_mode(tmp_path, open_umask):
    # An operator who chose a mode (a group that backs the file up) keeps it.
    database = tmp_path / "fc.db"
    database.touch(mode=0o640)
    app = create_app({**BASE_TEST_CONFIG, "DATABASE_URL": f"sqlite:///{database}"})
    with app.app_context():
        upgrade(directory=app.extensions["migrate"].directory)
        db.engine.dispose()
    assert mode_of(database) == 0o640


def test_demo_creates_its_instance_folder_and_files_owner_only(tmp_path, open_umask):
    """``funnelcake demo`` on a fresh machine: nothing set but the instance folder."""
    instance = tmp_path / "instance"
    env = {key: value for key, value in os.environ.items() if not key.startswith("FUNNELCAKE_")}
    env["FUNNELCAKE_INSTANCE_DIR"] = str(instance)
    result = subprocess.run(
        [sys.executable, "-m", "widget_server", "demo", "--no-serve"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert mode_of(instance) == 0o700
    files = {path.name: mode_of(path) for path in instance.iterdir()}
    assert "funnelcake.db" in files and "secret_key" in files, files
    assert files == {name: 0o600 for name in files}
