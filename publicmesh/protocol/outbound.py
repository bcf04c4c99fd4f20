"""Signed calls from the hub to other parts, over one pooled aiohttp session."""

from __future__ import annotations

import asyncio
import uuid

import aiohttp
import orjson

from publicmesh.problems import Problem
from publicmesh.protocol.signatures import SignatureError, Signer, Verifier
from publicmesh.protocol.trust import CERTIFICATE_HEADER


class SignedAnswer:
    def __init__(self, status: int, body: bytes, content_type: str):
        self.status, self.body, self.content_type = status, body, content_type

    def json(self):
        return orjson.loads(self.body)


class Outbound:
    """Posts signed requests and verifies that the answer is signed by the member addressed."""

    def __init__(self, signer: Signer, certificate_header: str, verifier: Verifier, timeout_s: float):
        self._signer = signer
        self._certificate = certificate_header
        self._verifier = verifier
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(limit=256, limit_per_host=128, keepalive_timeout=60, ttl_dns_cache=None)
        self._session = aiohttp.ClientSession(connector=connector, json_serialize=lambda o: orjson.dumps(o).decode())

    async def close(self) -> None:
        if self._session:
            await self._session.close()

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("the outbound client is not started")
        return self._session

    async def post(
        self,
        base_url: str,
        path: str,
        doc: dict,
        expect_signer: str,
        *,
        timeout_s: float | None = None,
        request_id: str | None = None,
    ) -> SignedAnswer:
        return await self.post_bytes(
            base_url,
            path,
            orjson.dumps(doc),
            "application/json",
            expect_signer,
            timeout_s=timeout_s,
            request_id=request_id,
        )

    async def post_bytes(
        self,
        base_url: str,
        path: str,
        body: bytes,
        content_type: str,
        expect_signer: str,
        *,
        timeout_s: float | None = None,
        request_id: str | None = None,
    ) -> SignedAnswer:
        """Like ``post``, for a body already encoded (e.g. an Arrow IPC stream); the signature covers its digest."""
        request_id = request_id or uuid.uuid4().hex
        headers = await _beside_the_loop(len(body), self._signer.sign_request, "POST", path, body, request_id)
        headers[CERTIFICATE_HEADER] = self._certificate
        headers["content-type"] = content_type
        timeout = aiohttp.ClientTimeout(total=timeout_s) if timeout_s else self._timeout
        try:
            async with self.session.post(base_url + path, data=body, headers=headers, timeout=timeout) as response:
                payload = await response.read()
                status, answer_headers = response.status, response.headers
                content_type = response.content_type
        except TimeoutError:
            raise Problem("provider-timeout", f"{expect_signer} did not answer within {timeout.total} s") from None
        except aiohttp.ClientError as exc:
            raise Problem("provider-unavailable", f"{expect_signer} is unreachable: {type(exc).__name__}") from None
        try:
            signer = await _beside_the_loop(
                len(payload), self._verifier.verify_response, status, answer_headers, payload, request_id
            )
        except SignatureError as exc:
            raise Problem("bad-provider-answer", f"{expect_signer}: {exc.detail} (HTTP {status})") from None
        if signer != expect_signer:
            raise Problem("bad-provider-answer", f"the answer is signed by {signer}, not {expect_signer}")
        return SignedAnswer(status, payload, content_type)


_LARGE = 1 << 20


async def _beside_the_loop(size: int, work, *args):
    """work(*args), in a thread when it digests a large body (a municipality's answer): the event loop meanwhile
    serves the other exchanges, whose own work then runs on the other processor."""
    return await asyncio.to_thread(work, *args) if size > _LARGE else work(*args)
