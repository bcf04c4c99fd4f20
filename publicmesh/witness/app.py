"""The witness over HTTP: the hub submits each checkpoint with a consistency proof; anyone reads the latest cosigned."""

from __future__ import annotations

import base64
import binascii
import logging
from typing import Annotated

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from publicmesh.audit.checkpoint import Checkpoint
from publicmesh.design.observability import observe, present, store_answers
from publicmesh.problems import PROBLEM_TYPES, AnswerErrors, Problem, invalid_request, problem_openapi
from publicmesh.witness.core import Witness

log = logging.getLogger(__name__)
MAX_SIZE = 2**63 - 1
_B64_HASH = r"^[A-Za-z0-9+/]{43}=$"
PROBLEM: dict = {"content": {"application/problem+json": {}}}


class CheckpointIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    log_id: str = Field(min_length=1, max_length=200)
    tree_size: int = Field(ge=0, le=MAX_SIZE)
    root: str = Field(pattern=_B64_HASH)
    timestamp: str = Field(min_length=1, max_length=64)
    signature: str = Field(min_length=1, max_length=200)


class AddCheckpoint(BaseModel):
    """A checkpoint, and the RFC 9162 consistency proof from the size the submitter believes the witness holds."""

    model_config = ConfigDict(extra="forbid")
    old_size: int = Field(ge=0, le=MAX_SIZE)
    proof: list[Annotated[str, Field(pattern=_B64_HASH)]] = Field(max_length=128)
    checkpoint: CheckpointIn


def create_app(witness: Witness) -> FastAPI:
    app = FastAPI(
        title="Public Service Mesh witness (証人)",
        version="1",
        description="Countersigns the audit log's checkpoints, each only if consistent with the last one it "
        "countersigned. Errors are RFC 9457 problems.",
        docs_url=None,
        redoc_url=None,
    )
    app.openapi = problem_openapi(app.openapi)  # type: ignore[method-assign]
    app.add_middleware(AnswerErrors, handler=_internal_error)
    observe(app, "witness", [("store", store_answers(witness.store.engine)), ("keys", present(witness.key))])

    @app.exception_handler(Problem)
    async def problem(request: Request, exc: Problem) -> Response:
        return exc.response(request.url.path)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        return invalid_request(list(exc.errors())).response(request.url.path)

    @app.post("/v1/add-checkpoint", responses={403: PROBLEM, 404: PROBLEM, 409: PROBLEM, 422: PROBLEM})
    def add_checkpoint(body: AddCheckpoint) -> dict:
        """Cosign the checkpoint if the log signed it and the proof shows it extends the last one cosigned (409 with
        the witness's ``tree_size`` otherwise)."""
        try:
            checkpoint = Checkpoint.from_dict(body.checkpoint.model_dump())
            proof = [base64.b64decode(h, validate=True) for h in body.proof]
        except (ValueError, binascii.Error) as exc:
            raise Problem("invalid-request", str(exc)) from None
        cosignature = witness.add_checkpoint(body.old_size, proof, checkpoint)
        return {"checkpoint": checkpoint.as_dict(), "cosignature": cosignature.as_dict()}

    @app.get("/v1/checkpoint", responses={404: PROBLEM})
    def latest(log_id: Annotated[str, Query(min_length=1, max_length=200)] = "publicmesh-audit") -> dict:
        """The latest checkpoint this witness cosigned of the log, with its cosignature."""
        found = witness.latest(log_id)
        if found is None:
            raise Problem("not-found", f"no checkpoint of {log_id!r} has been cosigned yet", tree_size=0)
        checkpoint, cosignature = found
        return {"checkpoint": checkpoint.as_dict(), "cosignature": cosignature.as_dict()}

    @app.get("/v1/key")
    def key() -> dict:
        """The witness's name and Ed25519 public key, which its cosignatures verify under."""
        return {"witness": witness.name, "public_key_pem": witness.public_pem()}

    @app.get("/problems")
    def problem_types() -> list:
        return [
            {"type": t.uri, "status": t.status, "title_ja": t.title_ja, "title_en": t.title_en}
            for t in PROBLEM_TYPES.values()
        ]

    return app


async def _internal_error(request: Request, _exc: Exception) -> Response:
    log.exception("unhandled error")
    return Problem("internal-error", "the witness failed to answer").response(request.url.path)
