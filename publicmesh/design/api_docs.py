"""A part's API documentation at /docs, made here from its OpenAPI document: no script and nothing from another
host (FastAPI's own /docs and /redoc load their scripts from a public CDN, so a part turns those off)."""

from __future__ import annotations

import json
from html import escape

from fastapi import FastAPI
from fastapi.responses import HTMLResponse

METHODS = ("get", "put", "post", "patch", "delete", "head", "options")
# The page has one <style> and nothing else to load: no script runs, nothing is fetched, no frame may hold it.
POLICY = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
STYLE = """body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;line-height:1.5}
code,pre{font-family:ui-monospace,monospace}pre{background:#f4f4f4;padding:.5rem;overflow-x:auto}
h2{margin-top:2rem;border-top:1px solid #ccc;padding-top:1rem}table{border-collapse:collapse}
td,th{border:1px solid #ccc;padding:.2rem .5rem;text-align:left}.method{text-transform:uppercase;font-weight:bold}"""


def mount_api_docs(app: FastAPI, path: str = "/docs") -> None:
    """Serve ``app``'s OpenAPI document as one HTML page at ``path`` (the app is made with docs_url=None and
    redoc_url=None; its /openapi.json stays)."""

    async def api_docs() -> HTMLResponse:
        return HTMLResponse(render(app.openapi(), app.openapi_url), headers={"content-security-policy": POLICY})

    app.add_api_route(path, api_docs, methods=["GET"], include_in_schema=False)


def render(doc: dict, openapi_url: str | None) -> str:
    """The page: each operation with its parameters, body and answers; then the schemas."""
    info = doc.get("info", {})
    title = escape(str(info.get("title", "API")))
    out = [
        f'<!doctype html><html lang="ja"><head><meta charset="utf-8"><title>{title}</title>',
        f"<style>{STYLE}</style></head><body><h1>{title}</h1>",
        f"<p>version {escape(str(info.get('version', '')))}</p>",
        f"<p>{escape(str(info.get('description', '')))}</p>",
    ]
    if openapi_url:
        out.append(f'<p>OpenAPI: <a href="{escape(openapi_url)}">{escape(openapi_url)}</a></p>')
    out.append("<nav><ul>")
    operations = [
        (method, route, op)
        for route, item in doc.get("paths", {}).items()
        for method, op in item.items()
        if method in METHODS
    ]
    for method, route, op in operations:
        out.append(f'<li><a href="#{_anchor(method, route)}"><span class="method">{method}</span> {escape(route)}</a>')
        if op.get("summary"):
            out.append(f" — {escape(op['summary'])}")
        out.append("</li>")
    out.append("</ul></nav>")
    for method, route, op in operations:
        out.append(
            f'<h2 id="{_anchor(method, route)}"><span class="method">{method}</span> <code>{escape(route)}</code></h2>'
        )
        for key in ("summary", "description"):
            if op.get(key):
                out.append(f"<p>{escape(str(op[key]))}</p>")
        parameters = op.get("parameters", [])
        if parameters:
            out.append("<table><tr><th>name</th><th>in</th><th>required</th><th>schema</th></tr>")
            for p in parameters:
                out.append(
                    f"<tr><td><code>{escape(str(p.get('name')))}</code></td><td>{escape(str(p.get('in')))}</td>"
                    f"<td>{'yes' if p.get('required') else 'no'}</td><td>{_schema(p.get('schema', {}))}</td></tr>"
                )
            out.append("</table>")
        for media, content in op.get("requestBody", {}).get("content", {}).items():
            out.append(f"<p>body <code>{escape(media)}</code>: {_schema(content.get('schema', {}))}</p>")
        out.append("<ul>")
        for status, answer in op.get("responses", {}).items():
            out.append(f"<li><code>{escape(str(status))}</code> {escape(str(answer.get('description', '')))}</li>")
        out.append("</ul>")
    schemas = doc.get("components", {}).get("schemas", {})
    if schemas:
        out.append("<h2>schemas</h2>")
        for name, schema in schemas.items():
            out.append(f'<h3 id="schema-{escape(name)}">{escape(name)}</h3>')
            out.append(f"<pre>{escape(json.dumps(schema, ensure_ascii=False, indent=1))}</pre>")
    out.append("</body></html>")
    return "".join(out)


def _anchor(method: str, route: str) -> str:
    return escape(method + "-" + "".join(c if c.isalnum() else "-" for c in route))


def _schema(schema: dict) -> str:
    ref = schema.get("$ref")
    if isinstance(ref, str):
        name = ref.rsplit("/", 1)[-1]
        return f'<a href="#schema-{escape(name)}">{escape(name)}</a>'
    return f"<code>{escape(json.dumps(schema, ensure_ascii=False))}</code>"
