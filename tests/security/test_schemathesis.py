"""Schemathesis against ``/api/v1/openapi.json`` of a running gunicorn: no 500, no answer that
breaks the documented schemas, on SQLite and on PostgreSQL.

The run is the schemathesis command line, as anyone would run it against a deployment, with a
fixed seed and a bounded number of examples so that it stays reproducible and under a minute.
Two checks are left out, on purpose: ``positive_data_acceptance`` and ``negative_data_rejection``
compare the service's validation with the document's JSON Schemas, but the service validates more
than JSON Schema can say (origins without a path, stage-rule grammar, wheel contents checked by
campaign kind) and parses leniently where marshmallow does (``2.0`` for an integer, ``1`` for
true). Everything a client receives is checked.
"""

import json
import subprocess
import sys
import urllib.request
from types import SimpleNamespace

import pytest

from tests.conftest import _postgres_database
from tests.reliability.servers import Gunicorn, in_process_app, migrate, seed_site
from widget_server.extensions import db
from widget_server.services.platform.tokens import create_token

CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "ignored_auth",
    "unsupported_method",
    "use_after_free",
    "ensure_resource_availability",
]
MAX_EXAMPLES = 10
SEED = 20261123


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def api_server(request, tmp_path_factory):
    """gunicorn on a migrated database with a site, a running survey and an admin token."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('schemathesis') / 'funnelcake.db'}"
    else:
        url = _postgres_database(request)
    migrate(url)
    site, _ = seed_site(url)
    app = in_process_app(url)
    with app.app_context():
        token = create_token("schemathesis")
        db.session.remove()
        db.engine.dispose()
    server = Gunicorn(url, workers=2)
    yield SimpleNamespace(server=server, site=site, token=token)
    server.stop()


def test_schemathesis_finds_no_server_error_and_no_schema_violation(api_server, tmp_path):
    config = tmp_path / "schemathesis.toml"
    # The public API is reached with a real site key; admin calls carry a real token.
    config.write_text(f'[parameters]\n"path.site_key" = "{api_server.site["site_key"]}"\n')
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(config),
        "run",
        f"{api_server.server.base_url}/api/v1/openapi.json",
        "--header",
        f"Authorization: Bearer {api_server.token}",
        "--checks",
        ",".join(CHECKS),
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        str(SEED),
        # One worker: CPython 3.11's parser is not thread-safe where hypothesis describes
        # lambdas ("AST constructor recursion depth mismatch" with --workers 2).
        "--workers",
        "1",
        "--no-color",
    ]
    run = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    report = run.stdout + run.stderr
    assert run.returncode == 0, report[-8000:]
    # Every documented operation was exercised.
    with urllib.request.urlopen(f"{api_server.server.base_url}/api/v1/openapi.json") as answer:
        operations = sum(len(methods) for methods in json.load(answer)["paths"].values())
    assert f"Tested: {operations}" in report, report[-3000:]
