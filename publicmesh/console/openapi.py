"""What the console's OpenAPI document says beyond the routes' signatures: the forms the pages post (read from the
request, so FastAPI cannot see them), the answers of each page, and the staff session the pages need."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from publicmesh.problems import PROBLEM_SCHEMA

Schema = dict[str, Any]
SESSION = "staffSession"
_HTML = {"text/html": {"schema": {"type": "string"}}}
_PROBLEM = {"application/problem+json": {"schema": PROBLEM_SCHEMA}}


def answers(*statuses: int) -> dict[int | str, dict[str, Any]]:
    texts = {
        200: ("The page", _HTML),
        303: ("To the page that follows, or to /login without a live session", None),
        400: ("The form is not complete (the page, with why)", _HTML),
        401: ("Wrong username, password or code (the login page again)", _HTML),
        403: ("Not this staff member's role, or the form's token does not match (the error page)", _HTML),
        404: ("Not there, or another municipality's (the error page)", _HTML),
        409: ("The application's status does not allow it now (the page, with why)", _HTML),
        413: ("The upload is too large", _HTML),
        422: ("A definition that does not validate (the page, with its problems), or an RFC 9457 problem", None),
    }
    out: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        description, content = texts[status]
        out[status] = {"description": description} | ({"content": content} if content else {})
    if 422 in statuses:
        out[422]["content"] = {**_HTML, **_PROBLEM}
    return out


def _form(properties: dict[str, Schema], required: tuple[str, ...] = ("csrf",), media: str = "") -> Schema:
    schema = {"type": "object", "properties": properties, "required": list(required)}
    return {
        "requestBody": {
            "required": True,
            "content": {media or "application/x-www-form-urlencoded": {"schema": schema}},
        }
    }


_TEXT = {"type": "string", "maxLength": 200}
_CSRF = {"type": "string", "maxLength": 64, "description": "The form token of the session (of the login page)"}
PAGE = answers(200, 303, 403, 404)
LOGIN = _form(
    {"username": _TEXT, "password": _TEXT, "totp": {"type": "string", "maxLength": 8}, "csrf": _CSRF},
    ("username", "password", "totp", "csrf"),
)
LOGIN_ANSWERS = answers(303, 401, 403)
LOGOUT = _form({"csrf": _CSRF})
DECISION = _form({"csrf": _CSRF, "reason": {"type": "string", "maxLength": 2000}})
DECISION_ANSWERS = answers(200, 303, 400, 403, 404, 409)
PUBLISH = _form(
    {
        "csrf": _CSRF,
        "service": {"type": "string", "maxLength": 128, "description": "A packaged definition's file name"},
        "file": {"type": "string", "contentMediaType": "application/yaml", "description": "Or a definition"},
        "action": {"type": "string", "enum": ["check", "publish"]},
    },
    media="multipart/form-data",
)
PUBLISH_ANSWERS = answers(200, 303, 400, 403, 404, 409, 413, 422)
QUEUE = {"parameters": [{"name": "page", "in": "query", "required": False, "schema": {"type": "string"}}]}
CASE = {"parameters": [{"name": "done", "in": "query", "required": False, "schema": {"type": "string"}}]}


def documented(openapi: Callable[[], Schema]) -> Callable[[], Schema]:
    """The app's ``openapi`` with the staff session as its security scheme and the ``lang`` choice on each page."""

    def document() -> Schema:
        schema = openapi()
        schema.setdefault("components", {})["securitySchemes"] = {
            SESSION: {
                "type": "apiKey",
                "in": "cookie",
                "name": "console_session",
                "description": "The session cookie POST /login sets (password and TOTP); each form also carries "
                "the session's token, csrf. Without a live session a page sends the browser to /login (303).",
            }
        }
        lang = {"name": "lang", "in": "query", "required": False, "schema": {"type": "string", "enum": ["ja", "en"]}}
        for path, operations in schema.get("paths", {}).items():
            for operation in operations.values():
                operation.setdefault("parameters", []).append(lang)
                invalid = operation.get("responses", {}).get("422", {})
                if "application/json" in invalid.get("content", {}):  # FastAPI's own: answered as a problem
                    invalid["content"] = {
                        **{k: v for k, v in invalid["content"].items() if k != "application/json"},
                        **_PROBLEM,
                    }
                if path != "/login":
                    operation["security"] = [{SESSION: []}]
        return schema

    return document
