"""The hub's side of a signed HTTP exchange: authenticate the body, answer signed, errors as signed problems."""

from __future__ import annotations

import uuid
from typing import Any, TypeVar

from fastapi import Request
from fastapi.responses import Response
from pydantic import BaseModel, ValidationError

from publicmesh.problems import Problem, preferred_language
from publicmesh.protocol.members import MemberId
from publicmesh.protocol.nonces import NonceRecorder
from publicmesh.protocol.signatures import SignatureError, Signer, Verifier

Model = TypeVar("Model", bound=BaseModel)

PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    s: {"description": t, "content": {"application/problem+json": {}}}
    for s, t in (
        (400, "Malformed request"),
        (401, "Unsigned, badly signed, stale or replayed"),
        (403, "No access rule allows it"),
        (404, "Unknown subject, member or dataset"),
        (413, "Too large"),
        (502, "Provider answer not verifiable"),
        (503, "Provider unavailable"),
        (504, "Provider timeout"),
    )
}


def request_id_of(request: Request) -> str:
    """The caller's request id, or a fresh one."""
    return request.headers.get("mesh-request-id") or uuid.uuid4().hex


def target_path(request: Request) -> str:
    """The signed @path, as ``request.url.path`` gives it, without building the whole URL (a tenth of the signature
    check's time)."""
    return request.scope["path"].replace("?", "%3F").replace("#", "%23").replace("\\", "%5C")


def invalid(exc: ValidationError) -> Problem:
    """A pydantic validation error as a malformed-request problem listing the first errors."""
    errors = [{"loc": ".".join(str(p) for p in e["loc"]), "msg": e["msg"]} for e in exc.errors(include_url=False)]
    return Problem("malformed-request", "; ".join(f"{e['loc']}: {e['msg']}" for e in errors[:5]), errors=errors)


class SignedHttp:
    """Verifies members' signed requests and signs the hub's answers (RFC 9421)."""

    def __init__(self, signer: Signer, verifier: Verifier, nonces: NonceRecorder | None = None):
        self.signer, self.verifier, self.nonces = signer, verifier, nonces

    async def authenticate(self, request: Request, body: bytes) -> MemberId:
        """The signer, its nonce recorded in the hub's store (when it has one) before anything is answered."""
        path = target_path(request)
        if self.nonces is None:
            return MemberId.parse(self.verifier.verify_request(request.method, path, request.headers, body))
        signed = self.verifier.check_request(request.method, path, request.headers, body)
        if not await self.nonces.seen_once(*signed):  # seen before a restart
            raise SignatureError("replayed", "this signature nonce was already used")
        return MemberId.parse(signed.key_id)

    async def body(self, request: Request, limit: int) -> tuple[MemberId, bytes]:
        """The authenticated caller and the body, refused past ``limit`` bytes before it is read where declared."""
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise Problem("payload-too-large", f"the body may be at most {limit} bytes")
        body = await request.body()
        if len(body) > limit:
            raise Problem("payload-too-large", f"the body may be at most {limit} bytes")
        try:
            return await self.authenticate(request, body), body
        except SignatureError as exc:
            raise Problem(exc.reason, exc.detail) from None

    async def request(self, request: Request, model: type[Model], limit: int) -> tuple[MemberId, Model]:
        """The authenticated caller and its request body, validated against ``model``."""
        consumer, body = await self.body(request, limit)
        try:
            return consumer, model.model_validate_json(body)
        except ValidationError as exc:
            raise invalid(exc) from None

    def answer(self, status: int, body: bytes | memoryview, request_id: str, media_type: str) -> Response:
        return Response(
            body, status, headers=self.signer.sign_response(status, body, request_id), media_type=media_type
        )

    def problem(self, problem: Problem, request: Request, request_id: str) -> Response:
        body = problem.body(request_id, preferred_language(request.headers.get("accept-language")))
        return self.answer(problem.status, body, request_id, "application/problem+json")

    def internal_error(self, request: Request) -> Response:
        """The signed problem for an unhandled error (logged by the caller)."""
        return self.problem(
            Problem("internal-error", "the hub could not complete the request"),
            request,
            request.headers.get("mesh-request-id", ""),
        )
