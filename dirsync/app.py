"""The application factory: wires settings, store, application auth and the Crowd API.

Authentication is decided on the resolved route, after URL routing: every endpoint except
those in PUBLIC_ENDPOINTS requires an application, and so does a request that matched no route
(its endpoint is None), so no path spelling can slip past the check.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, Response, g, request

from dirsync import __version__
from dirsync.crowd import errors as crowd_errors
from dirsync.crowd import views as crowd_views
from dirsync.crowd.auth import (
    FAILED,
    REALM,
    AddressDenied,
    ApplicationAuthenticator,
    AuthFailure,
    Throttled,
)
from dirsync.ldap.config import DirectoryConfig
from dirsync.names import name_key
from dirsync.settings import Settings
from dirsync.store.db import Store

log = logging.getLogger(__name__)

PUBLIC_ENDPOINTS = frozenset({"health"})


@dataclass
class Services:
    settings: Settings
    store: Store
    authenticator: ApplicationAuthenticator
    # configured LDAP directories by name key, for login by bind
    directories: dict[str, DirectoryConfig] = field(default_factory=dict)


def _text(body: str, status: int, **headers: str) -> Response:
    return Response(body, status=status, content_type="text/plain;charset=UTF-8", headers=headers)


def create_app(settings: Settings, store: Store | None = None) -> Flask:
    app = Flask("dirsync")
    # One connection per thread, plus one for a streamed response still being written.
    store = store or Store(settings.database_url, pool_size=settings.server_threads + 1)
    services = Services(settings, store, ApplicationAuthenticator(store, settings),
                        {name_key(d.name): d for d in settings.directories})
    app.extensions["dirsync"] = services
    app.config["MAX_CONTENT_LENGTH"] = settings.server_max_body_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]

    @app.before_request
    def _authenticate() -> Response | None:
        if request.endpoint in PUBLIC_ENDPOINTS:
            return None
        authenticator = services.authenticator
        address = authenticator.client_address(
            request.remote_addr, request.headers.getlist("X-Forwarded-For")
        )
        try:
            g.application = authenticator.authenticate(request.headers.get("Authorization"), address)
        except AuthFailure:
            return _text(FAILED, 401, **{"WWW-Authenticate": f'Basic realm="{REALM}"'})
        except AddressDenied as exc:
            return _text(str(exc), 403)
        except Throttled as exc:
            response = crowd_errors.error_response(
                "APPLICATION_ACCESS_DENIED",
                f"Too many failed application logins from {exc.address}; "
                f"retry in {int(exc.retry_after) + 1} s",
                429,
            )
            response.headers["Retry-After"] = str(int(exc.retry_after) + 1)
            return response
        return None

    @app.after_request
    def _version_header(response: Response) -> Response:
        # The Java client rejects any response without it, whatever the status (§0).
        response.headers["X-Embedded-Crowd-Version"] = settings.server_version_header
        return response

    @app.get("/health")
    def health() -> Any:
        """Liveness and store reachability; needs no application credentials."""
        store.check_schema()
        return {"status": "ok", "version": __version__}

    crowd_errors.init_app(app)
    crowd_views.init_app(app)
    return app
