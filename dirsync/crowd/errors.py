"""From exceptions to HTTP: one table of statuses, one body format (Crowd's ErrorEntity).

Every error body is `<error><reason/><message/></error>` (or its JSON form) because old Java
clients fail hard on a 404 without one (crowd-protocol §1.2). Application-authentication
failures (401/403) are plain text: the client shows that text and never parses it.
"""

from __future__ import annotations

import logging

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from dirsync import errors
from dirsync.crowd.negotiate import renderer_for_request
from dirsync.store.db import StoreError

log = logging.getLogger(__name__)

STATUS: dict[type[errors.CrowdError], int] = {
    errors.IllegalArgument: 400,
    errors.UserNotFound: 404,
    errors.UnknownUserAtLogin: 400,
    errors.GroupNotFound: 404,
    errors.MembershipNotFound: 404,
    errors.InvalidUserAuthentication: 400,
    errors.InactiveAccount: 400,
    errors.ReadOnly: 403,
    errors.EventTokenExpired: 410,
    errors.OperationFailed: 500,
}

# Werkzeug's own errors (routing, body size) mapped to reasons from the client's enum.
HTTP_REASONS: dict[int, str] = {
    400: "ILLEGAL_ARGUMENT",
    404: "UNSUPPORTED_OPERATION",
    405: "UNSUPPORTED_OPERATION",
    413: "ILLEGAL_ARGUMENT",
    415: "ILLEGAL_ARGUMENT",
}


def status_of(exc: errors.CrowdError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]  # type: ignore[index]
    return 500


def error_response(reason: str, message: str, status: int) -> Response:
    renderer = renderer_for_request()
    return Response(renderer.error(reason, message), status=status, content_type=renderer.content_type)


def _crowd_error(exc: errors.CrowdError) -> Response:
    return error_response(exc.reason, exc.message, status_of(exc))


def _http_error(exc: HTTPException) -> Response:
    status = exc.code or 500
    if status == 404:
        message = f"No resource at {request.path}"
    elif status == 405:
        message = f"{request.method} is not supported on {request.path}"
    elif status == 413:
        message = "The request body is larger than this server accepts"
    else:
        message = exc.description or exc.name
    response = error_response(HTTP_REASONS.get(status, "OPERATION_FAILED"), message, status)
    if status == 405 and exc.get_response().headers.get("Allow"):
        response.headers["Allow"] = exc.get_response().headers["Allow"]
    return response


def _store_error(exc: StoreError) -> Response:
    log.error("store failure on %s %s: %s", request.method, request.path, exc)
    return error_response("OPERATION_FAILED", "The directory store is unavailable", 500)


def _unexpected(exc: Exception) -> Response:
    log.exception("unexpected error on %s %s", request.method, request.path)
    return error_response("OPERATION_FAILED", "Internal error; see the dirsync log", 500)


def init_app(app: Flask) -> None:
    app.register_error_handler(errors.CrowdError, _crowd_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(StoreError, _store_error)
    app.register_error_handler(Exception, _unexpected)
