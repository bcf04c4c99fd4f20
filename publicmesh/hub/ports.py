"""What the exchange needs of its collaborators: small protocols, so a test can hand it fakes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

import pyarrow as pa

from publicmesh.audit import ExchangeRecord
from publicmesh.audit.records import SubjectBatch
from publicmesh.hub.numbers_client import ScanHandle
from publicmesh.hub.registry import Member
from publicmesh.protocol.members import MemberId
from publicmesh.protocol.outbound import SignedAnswer


class MemberDirectory(Protocol):
    """The member registry as the hub reads it (registry.Directory)."""

    @property
    def members(self) -> Mapping[str, Member]: ...

    def get(self, member: MemberId | str) -> Member | None: ...


class DatasetCatalog(Protocol):
    """Each provider's published datasets (catalog.Catalog)."""

    async def dataset(self, member: MemberId, name: str) -> dict: ...


class PseudonymConverter(Protocol):
    """The number service as the hub calls it (numbers_client.NumbersClient)."""

    async def convert(self, pseudonym: str, source: str, targets: tuple[str, ...]) -> dict[str, str | None]: ...

    async def convert_many(
        self, pseudonyms: list[str], source: str, targets: tuple[str, ...]
    ) -> dict[str, list[str | None]]: ...

    async def convert_arrays(self, values: pa.Array, source: str, targets: tuple[str, ...]) -> dict[str, pa.Array]: ...

    async def convert_scan(
        self, values: pa.Array, source: str, targets: tuple[str, ...]
    ) -> tuple[dict[str, pa.Array], ScanHandle | None]: ...


class SignedCalls(Protocol):
    """Signed calls to other members, their answers' signatures verified (protocol.outbound.Outbound)."""

    async def post(
        self,
        base_url: str,
        path: str,
        doc: dict,
        expect_signer: str,
        *,
        timeout_s: float | None = None,
        request_id: str | None = None,
    ) -> SignedAnswer: ...

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
    ) -> SignedAnswer: ...


class AuditAppender(Protocol):
    """The exchange record log's writer (audit.AsyncAuditAppender): positions of the records, once committed."""

    async def append_many(self, batch: Sequence[ExchangeRecord | SubjectBatch]) -> list[int]: ...
