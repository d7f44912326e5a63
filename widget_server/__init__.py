"""Funnelcake's Flask application."""

import re
from pathlib import Path

from flask import Flask, jsonify
from werkzeug.middleware.proxy_fix import ProxyFix

from config import INSTANCE_DIR, Config

from .errors import register_error_handlers
from .extensions import csrf, db, limiter, migrate, normalise_database_url
from .services.platform import stored_json

PACKAGE_DIR = Path(__file__).resolve().parent
#: Top of the source tree: ``static/`` (the snippet) and ``migrations/`` live beside the package.
PROJECT_ROOT = PACKAGE_DIR.parent


def _bundled(name: str) -> Path:
    """The installed package's copy of a top-level folder (setup.py puts it in the wheel), or
    the source tree's when running from a checkout or an editable install."""
    inside = PACKAGE_DIR / name
    return inside if inside.is_dir() else PROJECT_ROOT / name


#: The snippet, the admin page's assets and the demo store's stylesheet.
STATIC_DIR = _bundled("static")
#: The snippet's renderer, named for its content's hash by ``snippet/build.py``.
RENDERER_PATH = re.compile(r"/static/widget-render\.[0-9a-f]+\.js")
#: Alembic's environment and versions, for ``funnelcake db upgrade`` and the demo.
MIGRATIONS_DIR = _bundled("migrations")


def create_app(test_config: dict | None = None) -> Flask:
    """Build the app: configuration, extensions, blueprints and CLI; touches no database.

    Nothing more: background work (applying events, promotion rounds, webhooks) is started by
    ``funnelcake worker`` and ``funnelcake demo``, so building an app starts no thread.
    """
    app = Flask(
        __name__,
        static_folder=str(STATIC_DIR),
        static_url_path="/static",
        instance_path=str(INSTANCE_DIR),
    )
    app.config.from_mapping(Config.as_dict())
    if test_config:
        app.config.from_mapping(test_config)
    app.config["SQLALCHEMY_DATABASE_URI"] = normalise_database_url(app.config["DATABASE_URL"])
    app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", _engine_options(app.config))
    app.config["RATELIMIT_STORAGE_URI"] = app.config["REDIS_URL"] or "memory://"
    app.config["RATELIMIT_STORAGE_OPTIONS"] = {"socket_connect_timeout": 1, "socket_timeout": 1}
    app.config["RATELIMIT_SWALLOW_ERRORS"] = True
    hops = app.config["TRUSTED_PROXY_HOPS"]
    if hops:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)

    db.init_app(app)
    migrate.init_app(app, db, directory=str(MIGRATIONS_DIR))
    limiter.init_app(app)
    csrf.init_app(app)
    register_error_handlers(app)

    from . import models  # noqa: F401  (registers the tables with the metadata)
    from .admin import bp as admin_bp
    from .api.admin import bp as admin_api_bp
    from .api.openapi import bp as openapi_bp
    from .api.orders import bp as orders_bp
    from .api.platforms import bp as platforms_bp
    from .api.public import bp as public_bp
    from .demo import bp as demo_bp

    app.register_blueprint(public_bp)
    app.register_blueprint(admin_api_bp)
    app.register_blueprint(demo_bp)
    app.register_blueprint(openapi_bp)
    app.register_blueprint(orders_bp)
    app.register_blueprint(platforms_bp)
    app.register_blueprint(admin_bp)
    # The APIs authenticate with site keys, signatures and bearer tokens, never with cookies.
    csrf.exempt(public_bp)
    csrf.exempt(admin_api_bp)
    csrf.exempt(orders_bp)
    csrf.exempt(platforms_bp)
    _register_commands(app)

    from .api.openapi import documented
    from .schemas.common import HealthSchema

    @app.get("/healthz")
    @documented(answer=HealthSchema)
    def healthz():
        """Answer while the process is up."""
        return jsonify(status="ok")

    @app.get("/readyz")
    @documented(answer=HealthSchema, other_answers={503: HealthSchema})
    def readyz():
        """Answer 200 when the database is reachable, with the events waiting for the applier
        (a growing ``oldest_pending_age_s`` means no ``funnelcake worker`` keeps up); 503 when
        the database is not reachable.

        :raise 503: the database is not reachable.
        """
        from .services.ingest.applier import backlog
        from .services.platform.health import database_ready

        if database_ready():
            return jsonify(status="ready", events=backlog())
        return jsonify(status="unavailable"), 503

    @app.after_request
    def static_cache_headers(response):
        """The snippet's loader briefly (a new release reaches pages within minutes), its
        renderer for good (its name changes with its content: ``snippet/build.py``)."""
        from flask import request

        if request.path == "/static/widget.js":
            response.headers["Cache-Control"] = "public, max-age=300"
            response.headers["Access-Control-Allow-Origin"] = "*"
        elif RENDERER_PATH.fullmatch(request.path) and response.status_code < 400:
            response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
            response.headers["Access-Control-Allow-Origin"] = "*"
        return response

    return app


def _register_commands(app: Flask) -> None:
    """Put the ``funnelcake`` commands on ``app.cli`` too, for ``flask`` and the test runner."""
    from .commands import commands

    for command in commands.commands.values():
        app.cli.add_command(command)


def _engine_options(config) -> dict:
    """Fail fast when the database is down: answer 503 within ~2 s instead of hanging; read
    stored JSON with orjson (``services/platform/stored_json.py``)."""
    return {"json_deserializer": stored_json.loads, **_connection_options(config)}


def _connection_options(config) -> dict:
    url = config["SQLALCHEMY_DATABASE_URI"]
    timeout = config["DB_CONNECT_TIMEOUT_S"]
    pool = {
        "pool_size": config["DB_POOL_SIZE"],
        "max_overflow": config["DB_MAX_OVERFLOW"],
        "pool_timeout": config["DB_POOL_TIMEOUT_S"],
    }
    if url.startswith("postgresql"):
        return {
            **pool,
            # No pool_pre_ping: idle connections are tried at checkout (extensions._ping_if_idle).
            "connect_args": {
                "connect_timeout": timeout,
                "options": f"-c statement_timeout={int(timeout * 1000) * 5}",
            },
        }
    if url.startswith("sqlite") and ":memory:" not in url and url != "sqlite://":
        return {**pool, "connect_args": {"timeout": 15}}
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": 15}}
    return {}
