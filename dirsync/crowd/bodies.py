"""Request bodies: safely parsed XML (no DTDs, no entities) or JSON.

Any malformed body is an IllegalArgument (400), never a 500.
"""

from __future__ import annotations

import json
from typing import Any
from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from dirsync.errors import IllegalArgument


def is_json(content_type: str | None, body: bytes) -> bool:
    """JSON when the client says so, or (lenient) when the body plainly is JSON."""
    if content_type and "json" in content_type.lower():
        return True
    if content_type and "xml" in content_type.lower():
        return False
    return body.lstrip()[:1] in (b"{", b"[")


def parse_xml(body: bytes, what: str) -> Element:
    try:
        return SafeET.fromstring(body, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException:
        raise IllegalArgument(f"The {what} body must not contain a DTD or entities") from None
    except (ParseError, ValueError) as exc:
        raise IllegalArgument(f"The {what} body is not well-formed XML: {exc}") from None


def parse_json(body: bytes, what: str) -> Any:
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise IllegalArgument(f"The {what} body is not valid JSON: {exc}") from None


def password_value(body: bytes, content_type: str | None) -> str:
    """`<password><value>P</value></password>` or `{"value": "P"}`."""
    if not body.strip():
        raise IllegalArgument("A password body is required: <password><value>…</value></password>")
    if is_json(content_type, body):
        data = parse_json(body, "password")
        if not isinstance(data, dict) or not isinstance(data.get("value", ""), str):
            raise IllegalArgument('The password body must look like {"value": "…"}')
        return data.get("value") or ""
    root = parse_xml(body, "password")
    if root.tag != "password":
        raise IllegalArgument(f"Expected a <password> element, got <{root.tag}>")
    value = root.find("value")
    return (value.text or "") if value is not None else ""
