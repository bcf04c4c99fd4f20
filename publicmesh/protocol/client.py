"""A member's client of the hub: signs queries, checks the hub's signature on every answer."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import cast

import httpx
import orjson
import pyarrow as pa
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from publicmesh.protocol import bulk_wire, notices_wire
from publicmesh.protocol.ca import read_private_key
from publicmesh.protocol.members import HUB, MemberId
from publicmesh.protocol.schemas import BULK_MAX_SUBJECTS
from publicmesh.protocol.signatures import Signer, Verifier
from publicmesh.settings import Settings

ARROW_SUBJECTS_OVER = 1_000  # subjects above which a bulk query sends them as an Arrow column
# httpcore's synchronous socket write copies what is left of a body after every send(): quadratic in its size.
# Posting 100 MB to a server in another process took 0.4-0.7 s of this process's CPU whole, 0.04-0.26 s in pieces
# of 1 MiB: a large body goes in those.
_PIECE = 1 << 20
# What a retrying client (MeshClient.retry_for_s) tries again: the hub or a part behind it restarting.
RETRIED_STATUSES = frozenset({502, 503, 504})
log = logging.getLogger(__name__)


def _pieces(body: bytes) -> Iterator[bytes]:
    view = memoryview(body)
    for start in range(0, len(body), _PIECE):
        yield cast(bytes, view[start : start + _PIECE])  # httpx sends a view as it sends bytes, without a copy


class HubError(Exception):
    """The hub answered with problem details."""

    def __init__(self, status: int, problem: dict):
        super().__init__(f"{status} {problem.get('title')}: {problem.get('detail')}")
        self.status = status
        self.problem = problem


@dataclass
class MeshClient:
    """Keeps one HTTP connection pool, made on first use and shared by the threads that call (httpx's client may
    be): a new client per call built a TLS context and a connection every time, which cost more than a small
    query through the hub."""

    hub_url: str
    signer: Signer
    verifier: Verifier
    timeout_s: float = 30.0
    # Seconds a call keeps being tried while the hub, or the part behind it, is restarting (0: once). Only for
    # callers whose calls are idempotent (reads; notices, which the inbox keeps once per key): a publish.
    retry_for_s: float = 0.0
    _client: httpx.Client | None = field(default=None, init=False, repr=False, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False)

    def http(self) -> httpx.Client:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = httpx.Client()
        return self._client

    @classmethod
    def for_member(cls, settings: Settings, member: MemberId | str, hub_url: str) -> MeshClient:
        member = MemberId.parse(str(member))
        keys = settings.keys_dir / "members"
        hub_key = x509.load_pem_x509_certificate((keys / f"{HUB.file_stem}.pem").read_bytes()).public_key()
        if not isinstance(hub_key, Ed25519PublicKey):
            raise ValueError("the hub's key is not an Ed25519 key")
        verifier = Verifier(lambda kid: hub_key if kid == str(HUB) else None, 300)
        return cls(hub_url, Signer(str(member), read_private_key(keys / f"{member.file_stem}.key")), verifier)

    def _post(self, path: str, doc: dict) -> httpx.Response:
        return self._post_bytes(path, orjson.dumps(doc), "application/json")

    def retrying(self, seconds: float) -> MeshClient:
        """A client on the same keys whose calls are tried again for ``seconds`` while the mesh restarts a part."""
        return MeshClient(self.hub_url, self.signer, self.verifier, self.timeout_s, seconds)

    def _post_bytes(self, path: str, body: bytes, content_type: str) -> httpx.Response:
        deadline, pause = time.monotonic() + self.retry_for_s, 0.1
        while True:
            try:
                return self._post_once(path, body, content_type)
            except (httpx.TransportError, HubError) as exc:
                if isinstance(exc, HubError) and exc.status not in RETRIED_STATUSES:
                    raise
                if time.monotonic() + pause > deadline:
                    raise
                log.warning("%s failed (%s); trying again in %.1f s", path, exc, pause)
                time.sleep(pause)
                pause = min(pause * 2, 5.0)

    def _post_once(self, path: str, body: bytes, content_type: str) -> httpx.Response:
        request_id = uuid.uuid4().hex
        headers = {**self.signer.sign_request("POST", path, body, request_id), "content-type": content_type}
        content: bytes | Iterator[bytes] = body
        if len(body) > _PIECE:  # its length stated, so it goes as one body, not chunked
            content, headers["content-length"] = _pieces(body), str(len(body))
        response = self.http().post(self.hub_url + path, content=content, headers=headers, timeout=self.timeout_s)
        self.verifier.verify_response(response.status_code, response.headers, response.content, request_id)
        if response.status_code != 200:
            raise HubError(response.status_code, orjson.loads(response.content))
        return response

    def query(
        self, provider: str, dataset: str, subject: str, attributes: list[str], purpose: str, consent: str | None = None
    ) -> dict:
        doc = {
            "provider": provider,
            "dataset": dataset,
            "subject": subject,
            "attributes": attributes,
            "purpose": purpose,
        }
        if consent:
            doc["consent"] = consent
        return orjson.loads(self._post("/v1/query", doc).content)

    def bulk(
        self, provider: str, dataset: str, subjects: list[str] | pa.Array | None, attributes: list[str], purpose: str
    ) -> pa.Table:
        """Many subjects at once; ``subjects=None`` asks for every subject of the provider (a scan, where allowed).
        More subjects than one request may carry go in several requests, each its own audited exchange."""
        doc = {"provider": provider, "dataset": dataset, "attributes": attributes, "purpose": purpose}
        if subjects is None:
            return self._arrow(self._post("/v1/bulk", {**doc, "scan": True}))
        if len(subjects) > ARROW_SUBJECTS_OVER:  # a column, not a JSON list (bulk_wire)
            column = subjects if isinstance(subjects, (pa.Array, pa.ChunkedArray)) else pa.array(subjects, pa.string())
            parts = [
                self._arrow(
                    self._post_bytes(
                        "/v1/bulk",
                        bulk_wire.request_body(column.slice(start, BULK_MAX_SUBJECTS), doc),
                        bulk_wire.ARROW_STREAM,
                    )
                )
                for start in range(0, len(column), BULK_MAX_SUBJECTS)
            ]
            return pa.concat_tables(parts, promote_options="permissive") if len(parts) > 1 else parts[0]
        subjects = list(subjects) if not isinstance(subjects, (pa.Array, pa.ChunkedArray)) else subjects.to_pylist()
        parts = [
            self._arrow(self._post("/v1/bulk", {**doc, "subjects": subjects[start : start + BULK_MAX_SUBJECTS]}))
            for start in range(0, max(len(subjects), 1), BULK_MAX_SUBJECTS)
        ]
        return pa.concat_tables(parts, promote_options="permissive") if len(parts) > 1 else parts[0]

    @staticmethod
    def _arrow(response: httpx.Response) -> pa.Table:
        return pa.ipc.open_stream(response.content).read_all()

    def notify(self, provider: str, purpose: str, service: str, notices: list[dict]) -> dict:
        """Notices to people's inboxes through the hub; answers which recipients have a prior intent."""
        return orjson.loads(
            self._post(
                "/v1/notify", {"provider": provider, "purpose": purpose, "service": service, "notices": notices}
            ).content
        )

    def notify_table(self, provider: str, purpose: str, service: str, notices: pa.Table) -> pa.Array:
        """Notices in Arrow columns (notices_wire: subject, key, titles, bodies, link, category), a
        municipality's worth per request; answers, per notice, whether the person has a prior intent."""
        flags = []
        for start in range(0, notices.num_rows, notices_wire.MAX_NOTICES):
            part = notices.slice(start, notices_wire.MAX_NOTICES)
            body = notices_wire.request_body(part, {"provider": provider, "purpose": purpose, "service": service})
            answer = self._post_bytes("/v1/notify", body, notices_wire.ARROW_STREAM)
            flags.append(notices_wire.read_answer(answer.content, part.num_rows)[0])
        return pa.concat_arrays(flags) if flags else pa.array([], pa.bool_())
