"""One error type per failure kind, all answered with one JSON error body.

``{"error": {"code": "...", "message": "...", "fields": {"dotted.path": ["message", ...]}}}``
"""

from flask import Flask, jsonify, request
from marshmallow import ValidationError as SchemaError
from sqlalchemy.exc import DataError, DBAPIError, OperationalError, StatementError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException

from .extensions import db


class APIError(Exception):
    """Base of the errors a view may raise; ``status`` and ``code`` say what went wrong."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, fields: dict | None = None, headers: dict | None = None):
        super().__init__(message)
        self.message = message
        self.fields = fields or {}
        self.headers = headers or {}


class ValidationFailed(APIError):
    status = 400
    code = "validation_error"


class Unauthorized(APIError):
    status = 401
    code = "unauthorized"


class Forbidden(APIError):
    status = 403
    code = "forbidden"


class NotFound(APIError):
    status = 404
    code = "not_found"


class Conflict(APIError):
    status = 409
    code = "conflict"


class DuplicateOrder(Conflict):
    """The same order again (a webhook replay): already stored, nothing changed."""

    code = "duplicate_order"


class OrderIdReused(Conflict):
    """An order id stored before arrived with another body (order ids are never reused)."""


class Unprocessable(APIError):
    """Well-formed, but naming something that does not exist (an unknown coupon code)."""

    status = 422
    code = "unprocessable"


class PayloadTooLarge(APIError):
    status = 413
    code = "payload_too_large"


class ServiceUnavailable(APIError):
    status = 503
    code = "unavailable"


def flatten_messages(messages, prefix: str = "") -> dict[str, list[str]]:
    """Turn marshmallow's nested messages into ``{"steps.1.next.0.goto": [...]}``."""
    flat: dict[str, list[str]] = {}
    if isinstance(messages, dict):
        for key, value in messages.items():
            path = f"{prefix}.{key}" if prefix and key != "_schema" else (prefix or str(key))
            if key == "_schema":
                path = prefix or "_schema"
            for sub_path, sub_messages in flatten_messages(value, path).items():
                flat.setdefault(sub_path, []).extend(sub_messages)
    elif isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        flat[prefix or "_schema"] = list(messages)
    elif isinstance(messages, list):
        for item in messages:
            for sub_path, sub_messages in flatten_messages(item, prefix).items():
                flat.setdefault(sub_path, []).extend(sub_messages)
    else:
        flat[prefix or "_schema"] = [str(messages)]
    return flat


def validation_failed(err: SchemaError, prefix: str = "") -> ValidationFailed:
    """The ValidationFailed for a marshmallow error, fields prefixed with ``prefix``."""
    fields = flatten_messages(err.messages, prefix)
    names = ", ".join(sorted(fields)[:5])
    return ValidationFailed(f"Invalid input: {names}.", fields)


def error_response(status: int, code: str, message: str, fields: dict | None = None, headers=None):
    """The JSON error body every failure is answered with."""
    body = {"error": {"code": code, "message": message, "fields": fields or {}}}
    response = jsonify(body)
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(APIError)
    def handle_api_error(err: APIError):
        # A refused request leaves nothing behind, even what was flushed before the refusal.
        db.session.rollback()
        return error_response(err.status, err.code, err.message, err.fields, err.headers)

    @app.errorhandler(SchemaError)
    def handle_schema_error(err: SchemaError):
        return handle_api_error(validation_failed(err))

    @app.errorhandler(OperationalError)
    @app.errorhandler(DBAPIError)
    @app.errorhandler(PoolTimeout)
    def handle_database_down(err):
        # A database that is down or overloaded (no free pooled connection in time) is
        # transient: the snippet retries on 503.
        db.session.rollback()
        app.logger.warning("database error: %s", err.__class__.__name__)
        return error_response(
            503,
            "unavailable",
            "The database is unavailable; retry later.",
            headers={"Retry-After": "5"},
        )

    @app.errorhandler(OverflowError)
    @app.errorhandler(UnicodeEncodeError)
    @app.errorhandler(RecursionError)
    @app.errorhandler(DataError)
    def handle_unstorable_value(err):
        # A value the database or its driver cannot take (an id of 2**70, a lone surrogate, a
        # NUL character, JSON nested 10,000 deep): the request's fault, so a 4xx that the snippet
        # does not retry, never a 500 nor a "retry later" 503.
        db.session.rollback()
        return error_response(
            400,
            ValidationFailed.code,
            "A value in the request cannot be stored.",
            {
                "_schema": [
                    "A number is out of range, a text holds a character that cannot be stored "
                    "(NUL, a lone surrogate), or the body is nested too deeply."
                ]
            },
        )

    @app.errorhandler(StatementError)
    def handle_statement_error(err: StatementError):
        # SQLAlchemy wraps what fails while it prepares parameters (a date beyond its range).
        if isinstance(err.orig, OverflowError | ValueError):
            return handle_unstorable_value(err)
        db.session.rollback()
        app.logger.exception("statement error")
        return error_response(500, "internal_error", "Something went wrong on our side.")

    @app.errorhandler(HTTPException)
    def handle_http_exception(err: HTTPException):
        if (
            not request.path.startswith("/api/")
            and err.code
            and err.code < 500
            and request.blueprint not in (None, "public", "admin_api")
        ):
            return err
        code = (err.name or "error").lower().replace(" ", "_")
        # Keep what the exception says beyond its body: Allow on a 405 (RFC 9110), Retry-After.
        headers = {
            name: value
            for name, value in err.get_headers()
            if name.lower() not in ("content-type", "content-length")
        }
        return error_response(err.code or 500, code, err.description or err.name, headers=headers)

    @app.errorhandler(500)
    def handle_internal_error(err):
        db.session.rollback()
        return error_response(500, "internal_error", "Something went wrong on our side.")
