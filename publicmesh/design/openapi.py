"""OpenAPI 3.1 documents of the parts served by Starlette (the number service, the agency nodes): the pieces every
such document shares, and the two routes that serve one, /openapi.json and its local page /docs."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from publicmesh.design.api_docs import POLICY, render
from publicmesh.design.observability import health_paths
from publicmesh.problems import PROBLEM_SCHEMA, PROBLEM_TYPES

Schema = dict[str, Any]
SIGNED = "meshSignature"  # the name of the security scheme of signed routes
ARROW_STREAM = "application/vnd.apache.arrow.stream"
SIGNATURE_DESCRIPTION = (
    "HTTP Message Signatures (RFC 9421) with Ed25519, by a member key the mesh CA certified. A request carries "
    'Signature-Input and Signature (label \'mesh\', components "@method" "@path" "content-digest" '
    '"mesh-request-id", parameters created, keyid (the member id), alg="ed25519" and a nonce used once), '
    "Content-Digest (RFC 9530, sha-256) of its body and Mesh-Request-Id; a member the part has not seen yet "
    "adds its certificate in Mesh-Certificate (base64 PEM). Answers are signed the same way over "
    '"@status" "content-digest" "mesh-request-id". An unsigned, badly signed, stale or replayed request is '
    "answered 401, a member that may not call the route 403."
)


SIGNED_SCHEME = {"type": "apiKey", "in": "header", "name": "Signature", "description": SIGNATURE_DESCRIPTION}
SIGNED_ONLY: list[dict[str, list]] = [{SIGNED: []}]  # an operation's security: signed requests only


def problems(*statuses: int) -> dict[str, Schema]:
    """The responses of ``statuses`` as RFC 9457 problems, each described by the problem types it can be."""
    out = {}
    for status in statuses:
        slugs = sorted(t.slug for t in PROBLEM_TYPES.values() if t.status == status)
        out[str(status)] = {
            "description": "Problem: " + ", ".join(slugs) if slugs else "Problem",
            "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
    return out


def json_body(schema: Schema, *, required: bool = True) -> Schema:
    return {"required": required, "content": {"application/json": {"schema": schema}}}


def json_answer(description: str, schema: Schema) -> Schema:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def signed_operation(
    summary: str, request_body: Schema, answers: dict[str, Schema], *, description: str = ""
) -> Schema:
    """A POST that only a signed request reaches: its body, its answers and the problems every such route gives."""
    operation: Schema = {
        "summary": summary,
        "security": SIGNED_ONLY,
        "parameters": [
            {
                "name": "mesh-request-id",
                "in": "header",
                "required": False,
                "description": "The caller's id of the request, echoed and signed in the answer",
                "schema": {"type": "string", "maxLength": 128},
            }
        ],
        "requestBody": request_body,
        "responses": {**answers, **problems(400, 401, 403, 404, 413, 500)},
    }
    if description:
        operation["description"] = description
    return operation


def document(
    title: str, description: str, paths: dict[str, Schema], schemas: dict[str, Schema] | None = None
) -> Schema:
    """An OpenAPI 3.1 document with the problem schema and the signature scheme in its components."""
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": "1", "description": description},
        "paths": {**paths, **health_paths()},
        "components": {
            "schemas": {"Problem": PROBLEM_SCHEMA, **(schemas or {})},
            "securitySchemes": {SIGNED: SIGNED_SCHEME},
        },
    }


def model_schemas(models: Iterable[Any]) -> dict[str, Schema]:
    """Pydantic models' JSON Schemas, by model name, for a document's components (refs rewritten to them)."""
    out: dict[str, Schema] = {}
    for model in models:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        out.update(schema.pop("$defs", {}))
        out[model.__name__] = schema
    return out


def openapi_routes(make_document: Callable[[], Schema]) -> list[Route]:
    """/openapi.json and /docs (the page made by design.api_docs: no script, nothing from another host)."""
    built: list[Schema] = []

    def doc() -> Schema:
        if not built:
            built.append(make_document())
        return built[0]

    async def openapi_json(_request: Request) -> Response:
        return JSONResponse(doc())

    async def docs(_request: Request) -> Response:
        return HTMLResponse(render(doc(), "/openapi.json"), headers={"content-security-policy": POLICY})

    return [Route("/openapi.json", openapi_json), Route("/docs", docs)]
