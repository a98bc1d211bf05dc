"""Choosing XML or JSON for a request. XML unless the client prefers JSON.

The Java client sends `Accept: application/xml`, and no Accept at all on membership checks;
`*/*` and a missing header both mean XML (crowd-protocol §1.1).
"""

from __future__ import annotations

from flask import g, has_request_context, request

from dirsync.crowd.render import JsonRenderer, Renderer, XmlRenderer

XML = "application/xml"
JSON = "application/json"


def wants_json() -> bool:
    """JSON only when the client names it explicitly, ahead of any explicit XML type.
    Wildcards (`*/*`, `application/*`) count for nothing, so they leave the XML default."""
    for value, quality in request.accept_mimetypes:  # sorted by quality, then client order
        if quality <= 0:
            continue
        if value in (JSON, "application/*+json"):
            return True
        if value in (XML, "text/xml"):
            return False
    return False


def base_url() -> str:
    """The API root the client used, /1 or /latest, for self links."""
    version = g.get("api_version", "1")
    return f"{request.host_url}rest/usermanagement/{version}"


def renderer_for_request() -> Renderer:
    if not has_request_context():
        return XmlRenderer("")
    cached = g.get("renderer")
    if cached is None:
        cached = JsonRenderer(base_url()) if wants_json() else XmlRenderer(base_url())
        g.renderer = cached
    return cached
