"""One subject's read forwarded to its provider. The reads of concurrent queries for the same provider, dataset and
attributes share one signed bulk call: one HTTP leg, one signature each way and one indexed read at the provider
for all of them, where each query cost all three before (issue 21)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa

from publicmesh.hub.ports import SignedCalls
from publicmesh.hub.registry import Member
from publicmesh.problems import Problem

MAX_SHARED = 256  # reads in one call: more wait for the next one (a call is answered with its slowest read)


@dataclass(frozen=True)
class Read:
    """What the provider holds about one subject: the attributes asked, and whether the address is protected."""

    data: dict
    protected: bool


_Waiting = tuple[str, str, "asyncio.Future[Read]"]  # (provider's pseudonym, request id, the read's answer)


class ProviderReads:
    """Reads gathered per loop tick by (provider, dataset, attributes); a read alone is a plain query, as before."""

    def __init__(self, outbound: SignedCalls):
        self.outbound = outbound
        self._pending: dict[tuple[str, str, tuple[str, ...]], tuple[Member, list[_Waiting]]] = {}
        self.shared_calls = 0  # bulk calls that answered more than one read

    async def read(
        self, provider: Member, dataset: str, attributes: Sequence[str], subject: str, request_id: str, *, share=True
    ) -> Read:
        """The subject's row; Problem unknown-subject when the provider holds none. ``share``: False for a dataset
        whose bulk answer names persons by rows (bulk_wire.as_rows_of_answer), which a single query does not."""
        if not share:
            found = await self._query(provider, dataset, attributes, subject, request_id)
            if found is None:
                raise _unknown(provider, dataset)
            return found
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Read] = loop.create_future()
        key = (str(provider.id), dataset, tuple(attributes))
        if key not in self._pending:
            self._pending[key] = (provider, [])
            loop.call_soon(self._flush, key)
        waiting = self._pending[key][1]
        waiting.append((subject, request_id, future))
        if len(waiting) >= MAX_SHARED:
            self._flush(key)
        return await future

    def _flush(self, key: tuple[str, str, tuple[str, ...]]) -> None:
        taken = self._pending.pop(key, None)
        if taken:
            asyncio.ensure_future(self._answer(taken[0], key[1], key[2], taken[1]))

    async def _answer(self, provider: Member, dataset: str, attributes: tuple[str, ...], waiting: list[_Waiting]):
        try:
            if len(waiting) == 1:
                subject, request_id, _ = waiting[0]
                found = await self._query(provider, dataset, attributes, subject, request_id)
                rows = {} if found is None else {subject: found}
            else:
                rows = await self._bulk(provider, dataset, attributes, [s for s, _, _ in waiting])
        except Exception as exc:  # every read of the call learns it failed
            for _, _, future in waiting:
                if not future.done():
                    future.set_exception(exc)
            return
        for subject, _, future in waiting:
            if future.done():
                continue
            if subject in rows:
                future.set_result(rows[subject])
            else:
                future.set_exception(_unknown(provider, dataset))

    async def _query(
        self, provider: Member, dataset: str, attributes: Sequence[str], subject: str, request_id: str
    ) -> Read | None:
        doc = {"member": str(provider.id), "dataset": dataset, "subject": subject, "attributes": list(attributes)}
        answer = await self.outbound.post(provider.base_url, "/v1/query", doc, str(provider.id), request_id=request_id)
        if answer.status == 404:
            return None
        if answer.status != 200:
            raise Problem("bad-provider-answer", f"{provider.id} answered HTTP {answer.status}")
        found = answer.json()
        return Read(found["data"], bool(found.get("protected")))

    async def _bulk(
        self, provider: Member, dataset: str, attributes: tuple[str, ...], subjects: list[str]
    ) -> dict[str, Read]:
        asked = list(dict.fromkeys(subjects))  # a subject asked twice in one tick is read once
        doc = {"member": str(provider.id), "dataset": dataset, "attributes": list(attributes), "subjects": asked}
        # The call's own request id: the queries' ids are each in their exchange records.
        answer = await self.outbound.post(
            provider.base_url, "/v1/bulk", doc, str(provider.id), request_id=f"reads-{uuid.uuid4().hex}"
        )
        if answer.status != 200:
            raise Problem("bad-provider-answer", f"{provider.id} answered HTTP {answer.status}")
        try:
            return rows_by_subject(pa.ipc.open_stream(answer.body).read_all(), asked, attributes)
        except (pa.ArrowException, IndexError, KeyError, TypeError) as exc:
            raise Problem("bad-provider-answer", f"{provider.id}: unreadable answer to shared reads: {exc}") from None


def rows_by_subject(table: pa.Table, asked: Sequence[str], attributes: Sequence[str]) -> dict[str, Read]:
    """A node's bulk answer (rows marked by their position "i" in ``asked``) as each subject's Read, with the values
    a single query answers: the attributes asked, in their order, and the protection flag."""
    positions = table.column("i").to_pylist()
    protected = table.column("_protected").to_pylist() if "_protected" in table.column_names else None
    columns = [(name, table.column(name).to_pylist()) for name in attributes if name in table.column_names]
    rows = {}
    for k, i in enumerate(positions):
        if i is None or not 0 <= i < len(asked):
            raise IndexError(f"row {k} answers no subject asked")
        rows[asked[i]] = Read({name: values[k] for name, values in columns}, bool(protected and protected[k]))
    return rows


def _unknown(provider: Member, dataset: str) -> Problem:
    return Problem("unknown-subject", f"{provider.id} holds no {dataset} for this subject")
