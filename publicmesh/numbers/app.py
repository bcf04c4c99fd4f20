"""The number service over HTTP: pseudonym conversion for the hub (JSON or Arrow), enrolment of newborns for registries."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import numpy as np
import orjson
from pydantic import BaseModel, Field
from sqlalchemy import BigInteger, Column, Engine, Integer, MetaData, Table, select, update
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from publicmesh.design.openapi import ARROW_STREAM, Schema, document, json_answer, json_body, model_schemas
from publicmesh.design.openapi import signed_operation as signed
from publicmesh.numbers.pseudonyms import PseudonymService
from publicmesh.problems import Problem
from publicmesh.protocol import convert_wire as wire
from publicmesh.protocol.members import HUB, MemberId
from publicmesh.protocol.signatures import SignatureError, Signer, Verifier
from publicmesh.protocol.trust import TrustStore, authenticate_request

log = logging.getLogger(__name__)
# A route's work: (caller, body, content type) → (answer body, media type).
Work = Callable[[MemberId, bytes, str], Awaitable[tuple[bytes | memoryview, str]]]
metadata = MetaData()
# The only state besides keys: how many persons have been enrolled, so a newborn gets a fresh serial.
enrolment_counter = Table(
    "enrolment_counter",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("next_serial", BigInteger, nullable=False),
)


def reserve_serials(engine, count: int, at_least: int = 0) -> int:
    """Reserve ``count`` consecutive person serials; returns the first."""
    metadata.create_all(engine)
    with engine.begin() as conn:
        row = conn.execute(
            select(enrolment_counter.c.next_serial).where(enrolment_counter.c.id == 1).with_for_update()
        ).first()
        if row is None:
            first = at_least
            conn.execute(enrolment_counter.insert().values(id=1, next_serial=first + count))
        else:
            first = max(row.next_serial, at_least)
            conn.execute(update(enrolment_counter).where(enrolment_counter.c.id == 1).values(next_serial=first + count))
    return first


def only_the_hub(caller: MemberId) -> None:
    if caller != HUB:
        raise Problem("not-a-consumer", "only the hub converts pseudonyms")


def convert(service: PseudonymService, caller: MemberId, doc: dict) -> dict:
    """The JSON form: a list of pseudonyms of ``source`` in each target domain."""
    only_the_hub(caller)
    if not isinstance(doc, dict):
        raise Problem("malformed-request", "the body is a JSON object")
    pseudonyms = doc["pseudonyms"]
    if not isinstance(pseudonyms, list) or len(pseudonyms) > wire.MAX_BATCH:
        raise Problem("malformed-request", f"pseudonyms is a list of at most {wire.MAX_BATCH}")
    source, targets = doc["source"], doc["targets"]
    # as the Arrow form's routing: a few named domains, not any iterable (a text would be taken letter by letter)
    if not isinstance(source, str) or not isinstance(targets, list) or not 1 <= len(targets) <= wire.MAX_TARGETS:
        raise Problem("malformed-request", f"source is a domain name and targets a list of 1 to {wire.MAX_TARGETS}")
    if not all(isinstance(t, str) and t for t in targets):
        raise Problem("malformed-request", "targets are domain names")
    return {"converted": service.convert(pseudonyms, source, list(dict.fromkeys(targets)))}


def convert_columns(service: PseudonymService, body: bytes) -> memoryview:
    """The Arrow form: the same conversion, column in and columns out, without Python objects per value."""
    try:
        pseudonyms, source, targets = wire.read_request(body)
    except OverflowError as exc:
        raise Problem("payload-too-large", str(exc)) from None
    return wire.answer_body(service.convert(pseudonyms, source, targets))


def enrol(service: PseudonymService, engine: Engine, caller: MemberId, doc: dict) -> dict:
    """出生: a registry asks for a newborn's pseudonym in its own domain; the My Number stays here."""
    if caller.system != "resident-registry":
        raise Problem("not-a-consumer", "only resident registries enrol persons")
    count = doc.get("count", 1) if isinstance(doc, dict) else None
    if type(count) is not int or not 1 <= count <= 1000:
        raise Problem("malformed-request", "count is between 1 and 1000")
    first = reserve_serials(engine, count)
    pseudonyms = service.enrol(np.arange(first, first + count), [caller.pseudonym_domain])[caller.pseudonym_domain]
    return {"pseudonyms": pseudonyms.to_pylist()}


class ConvertRequest(BaseModel):
    """Pseudonyms of one domain to convert into each target domain (the hub's call)."""

    source: str = Field(min_length=1, max_length=200, description="The pseudonym domain of the pseudonyms")
    targets: list[str] = Field(min_length=1, max_length=wire.MAX_TARGETS, description="Pseudonym domains")
    pseudonyms: list[str] = Field(max_length=wire.MAX_BATCH)


class ConvertAnswer(BaseModel):
    converted: dict[str, list[str | None]] = Field(
        description="Per target domain, each pseudonym converted, in order; null where it is not one of the source's"
    )


class EnrolRequest(BaseModel):
    """出生: how many newborns a resident registry enrols."""

    count: int = Field(default=1, ge=1, le=1000)


class EnrolAnswer(BaseModel):
    pseudonyms: list[str] = Field(description="The newborns' pseudonyms in the registry's own domain")


def openapi() -> Schema:
    """The number service's OpenAPI document: every route but /healthz, /readyz and /metrics takes signed requests
    only."""
    ref = "#/components/schemas/{}".format
    arrow = {"type": "string", "contentMediaType": ARROW_STREAM}
    convert_doc = signed(
        "Convert pseudonyms between domains (the hub only)",
        {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": ref("ConvertRequest")}},
                ARROW_STREAM: {
                    "schema": {
                        **arrow,
                        "description": "One string column, pseudonym; source and targets (a JSON list) in the "
                        "schema metadata, so the signature's digest covers them",
                    }
                },
            },
        },
        {
            "200": {
                "description": "The converted pseudonyms, in the form of the request",
                "content": {
                    "application/json": {"schema": {"$ref": ref("ConvertAnswer")}},
                    ARROW_STREAM: {"schema": {**arrow, "description": "One string column per target domain"}},
                },
            }
        },
        description="Only the hub (MESH/0000000/hub) may convert; the My Number never leaves the service.",
    )
    enrol_doc = signed(
        "Enrol newborns (resident registries only)",
        json_body({"$ref": ref("EnrolRequest")}),
        {"200": json_answer("The newborns' pseudonyms", {"$ref": ref("EnrolAnswer")})},
        description="A resident registry (MUNI/<code>/resident-registry) gets fresh pseudonyms in its own domain.",
    )
    return document(
        "Public Service Mesh number service (番号管理)",
        "Converts agency pseudonyms (機関別符号) between domains with stateless cryptography and enrols newborns. "
        "The only part that sees a My Number; it answers the hub and resident registries only, signed requests "
        "only (RFC 9421), errors as RFC 9457 problems.",
        {"/v1/convert": {"post": convert_doc}, "/v1/enrol": {"post": enrol_doc}},
        model_schemas([ConvertRequest, ConvertAnswer, EnrolRequest, EnrolAnswer]),
    )


class NumbersApi:
    """The service's routes: each authenticates its caller, does its work and answers signed."""

    def __init__(
        self, service: PseudonymService, engine: Engine, trust: TrustStore, verifier: Verifier, signer: Signer
    ):
        self.service, self.engine = service, engine
        self.trust, self.verifier, self.signer = trust, verifier, signer

    def routes(self) -> list[Route]:
        return [
            Route("/v1/convert", self.convert, methods=["POST"]),
            Route("/v1/enrol", self.enrol, methods=["POST"]),
        ]

    async def convert(self, request: Request) -> Response:
        return await self._signed(request, self._convert)

    async def enrol(self, request: Request) -> Response:
        return await self._signed(request, self._enrol)

    async def _convert(self, caller: MemberId, body: bytes, content_type: str) -> tuple[bytes | memoryview, str]:
        if content_type.split(";")[0].strip().lower() != wire.ARROW_STREAM:
            return orjson.dumps(convert(self.service, caller, orjson.loads(body))), "application/json"
        only_the_hub(caller)  # before reading the body: a stranger's stream is never parsed
        # In a worker thread: a batch of millions takes a second, and smaller conversions must not wait behind it.
        return await run_in_threadpool(convert_columns, self.service, body), wire.ARROW_STREAM

    async def _enrol(self, caller: MemberId, body: bytes, _content_type: str) -> tuple[bytes, str]:
        return orjson.dumps(enrol(self.service, self.engine, caller, orjson.loads(body))), "application/json"

    async def _signed(self, request: Request, work: Work) -> Response:
        """Authenticates the caller, runs ``await work(caller, body, content_type)`` → (payload, media type), signs."""
        request_id = request.headers.get("mesh-request-id", "")
        body = await request.body()
        try:
            caller = authenticate_request(
                self.trust, self.verifier, request.method, request.url.path, request.headers, body
            )
            payload, media = await work(MemberId.parse(caller), body, request.headers.get("content-type", ""))
            status = 200
        except SignatureError as exc:
            return Problem(exc.reason, exc.detail).response(request_id)
        except Problem as problem:
            status, payload = problem.status, problem.body(request_id)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            status, payload = 400, Problem("malformed-request", str(exc)).body(request_id)
        except Exception:  # answered here, signed, as a problem: uvicorn would close the kept-alive connection
            log.exception("numbers: unhandled error on %s", request.url.path)
            status, payload = 500, Problem("internal-error", "the number service could not answer").body(request_id)
        if status != 200:
            media = "application/problem+json"
        return Response(
            payload, status, headers=self.signer.sign_response(status, payload, request_id), media_type=media
        )
