"""A node's HTTP face: each route authenticates the hub's signed request, runs the node's answer, signs it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from publicmesh.problems import Problem
from publicmesh.protocol import bulk_wire
from publicmesh.protocol.members import InvalidMemberId
from publicmesh.protocol.schemas import BULK_MAX_SUBJECTS
from publicmesh.protocol.signatures import SignatureError
from publicmesh.provider import node as answers
from publicmesh.provider.node import ARROW_STREAM, AgencyNode, Answer


class NodeRoutes:
    """The routes of one node; the work of each is a function of node.py, run in a thread."""

    def __init__(self, node: AgencyNode):
        self.node = node

    def routes(self) -> list[Route]:
        return [
            Route("/healthz", self.health),
            Route("/v1/datasets", self.datasets),
            Route("/v1/query", self.query, methods=["POST"]),
            Route("/v1/bulk", self.bulk, methods=["POST"]),
            Route("/v1/outbox", self.outbox, methods=["POST"]),
            Route("/v1/events", self.events, methods=["POST"]),
        ]

    async def health(self, _request: Request) -> Response:
        return JSONResponse({"status": "ok", "system": self.node.agency.system})

    async def datasets(self, _request: Request) -> Response:
        return JSONResponse(answers.describe(self.node))

    async def query(self, request: Request) -> Response:
        return await self._signed(request, answers.query)

    async def bulk(self, request: Request) -> Response:
        return await self._signed(request, answers.bulk)

    async def outbox(self, request: Request) -> Response:
        return await self._signed(request, answers.outbox)

    async def events(self, request: Request) -> Response:
        return await self._signed(request, answers.accept_events)

    async def _signed(self, request: Request, work: Callable[[AgencyNode, dict], Answer]) -> Response:
        """Authenticates the caller, reads its JSON or Arrow body, answers ``work(node, doc)`` signed by the member."""
        node = self.node
        request_id = request.headers.get("mesh-request-id", "")
        body = await request.body()
        member = next(iter(node.members))
        try:
            if len(body) > node.max_body:
                raise Problem("payload-too-large", f"at most {node.max_body} bytes")
            node.authenticate(request, body)
            if request.headers.get("content-type", "").startswith(ARROW_STREAM):  # bulk_wire: the hub's subjects
                fields, subjects = bulk_wire.read_subjects(body, BULK_MAX_SUBJECTS)
                doc = {**fields, "subjects": subjects}
            else:
                doc = orjson.loads(body) if body else {}
            if not isinstance(doc, dict):
                raise Problem("malformed-request", "the body is a JSON object")
            member = doc.get("member", member)
            if answers.on_the_loop(work, doc):
                status, payload, media = work(node, doc)
            else:
                # In a thread: a list asked while a scan is read (a municipality's names for its forms while the
                # next is scanned) is answered meanwhile, by another SQLite reader, instead of after it.
                status, payload, media = await asyncio.to_thread(work, node, doc)
        except SignatureError as exc:
            return Problem(exc.reason, exc.detail).response(request_id)
        except Problem as problem:
            return node.signed(
                member if member in node.members else next(iter(node.members)),
                request_id,
                problem.status,
                problem.body(request_id),
                "application/problem+json",
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, InvalidMemberId) as exc:
            malformed = Problem("malformed-request", f"{type(exc).__name__}: {exc}")
            return node.signed(
                next(iter(node.members)), request_id, 400, malformed.body(request_id), "application/problem+json"
            )
        return node.signed(member, request_id, status, payload, media)
