"""The number service over HTTP: pseudonym conversion for the hub (JSON or Arrow), enrolment of newborns for registries."""

from __future__ import annotations

import numpy as np
import orjson
from sqlalchemy import BigInteger, Column, Integer, MetaData, Table, select, update
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from publicmesh.numbers.keys import load_or_create_master
from publicmesh.numbers.pseudonyms import PseudonymService
from publicmesh.problems import Problem
from publicmesh.protocol import convert_wire as wire
from publicmesh.protocol.ca import read_private_key
from publicmesh.protocol.members import HUB, NUMBERS, MemberId
from publicmesh.protocol.signatures import SignatureError, Signer, Verifier
from publicmesh.protocol.trust import TrustStore, authenticate_request
from publicmesh.settings import Settings
from publicmesh.storage import engine_for

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


def create_app(settings: Settings) -> Starlette:
    service = PseudonymService(load_or_create_master(settings.keys_dir))
    engine = engine_for("numbers", settings)
    metadata.create_all(engine)
    trust = TrustStore.from_keys_dir(settings.keys_dir)
    verifier = Verifier(trust.key, settings.signature_max_age_s)
    signer = Signer(str(NUMBERS), read_private_key(settings.keys_dir / "members" / f"{NUMBERS.file_stem}.key"))

    async def signed(request: Request, work) -> Response:
        """Authenticates the caller, runs ``await work(caller, body, content_type)`` → (payload, media type), signs."""
        request_id = request.headers.get("mesh-request-id", "")
        body = await request.body()
        try:
            caller = authenticate_request(trust, verifier, request.method, request.url.path, request.headers, body)
            payload, media = await work(MemberId.parse(caller), body, request.headers.get("content-type", ""))
            status = 200
        except SignatureError as exc:
            return Problem(exc.reason, exc.detail).response(request_id)
        except Problem as problem:
            status, payload = problem.status, problem.body(request_id)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            status, payload = 400, Problem("malformed-request", str(exc)).body(request_id)
        if status != 200:
            media = "application/problem+json"
        return Response(payload, status, headers=signer.sign_response(status, payload, request_id), media_type=media)

    def json_work(work):
        async def run(caller: MemberId, body: bytes, _content_type: str):
            return orjson.dumps(work(caller, orjson.loads(body))), "application/json"

        return run

    def only_the_hub(caller: MemberId) -> None:
        if caller != HUB:
            raise Problem("not-a-consumer", "only the hub converts pseudonyms")

    def convert(caller: MemberId, doc: dict) -> dict:
        only_the_hub(caller)
        pseudonyms = doc["pseudonyms"]
        if not isinstance(pseudonyms, list) or len(pseudonyms) > wire.MAX_BATCH:
            raise Problem("malformed-request", f"pseudonyms is a list of at most {wire.MAX_BATCH}")
        return {"converted": service.convert(pseudonyms, doc["source"], list(doc["targets"]))}

    def convert_columns(body: bytes) -> bytes:
        """The Arrow form: the same conversion, column in and columns out, without Python objects per value."""
        try:
            pseudonyms, source, targets = wire.read_request(body)
        except OverflowError as exc:
            raise Problem("payload-too-large", str(exc)) from None
        return wire.answer_body(service.convert(pseudonyms, source, targets))

    async def convert_either(caller: MemberId, body: bytes, content_type: str):
        if content_type.split(";")[0].strip().lower() != wire.ARROW_STREAM:
            return await json_work(convert)(caller, body, content_type)
        only_the_hub(caller)  # before reading the body: a stranger's stream is never parsed
        # In a worker thread: a batch of millions takes a second, and smaller conversions must not wait behind it.
        return await run_in_threadpool(convert_columns, body), wire.ARROW_STREAM

    def enrol(caller: MemberId, doc: dict) -> dict:
        """出生: a registry asks for a newborn's pseudonym in its own domain; the My Number stays here."""
        if caller.system != "resident-registry":
            raise Problem("not-a-consumer", "only resident registries enrol persons")
        count = int(doc.get("count", 1))
        if not 1 <= count <= 1000:
            raise Problem("malformed-request", "count is between 1 and 1000")
        first = reserve_serials(engine, count)
        pseudonyms = service.enrol(np.arange(first, first + count), [caller.pseudonym_domain])[caller.pseudonym_domain]
        return {"pseudonyms": pseudonyms.to_pylist()}

    async def convert_route(request):
        return await signed(request, convert_either)

    async def enrol_route(request):
        return await signed(request, json_work(enrol))

    async def health(_request):
        return JSONResponse({"status": "ok", "system": "numbers"})

    return Starlette(
        routes=[
            Route("/healthz", health),
            Route("/v1/convert", convert_route, methods=["POST"]),
            Route("/v1/enrol", enrol_route, methods=["POST"]),
        ]
    )
