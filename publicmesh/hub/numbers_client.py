"""The hub's client of the number service: conversions from concurrent queries share one call."""

from __future__ import annotations

import asyncio
import itertools
from collections import defaultdict, deque
from dataclasses import dataclass

import pyarrow as pa

from publicmesh.problems import Problem
from publicmesh.protocol import convert_wire as wire
from publicmesh.protocol.outbound import Outbound

_FLUSH_AT = 512
# Measured with 2,000,000 pseudonyms into two targets: calls of 500,000 beat one of 2,000,000 (whose
# arrays outgrow the caches), and a second call in flight lets the number service convert while the hub reads.
_ARROW_CALL = 500_000
_IN_FLIGHT = 2
# A municipality's person and household scans name the same residents in the same order: the second scan's
# conversion is the first's answer again. The last few large conversions of scans (convert_scan) are kept, and
# are found by exact comparison. Two: the registry's scans' conversion, and the local tax's scan of the same
# municipality, asked at the same moment. Only conversions of more pseudonyms than ``keeps_over``
# (Settings.hub_keeps_over) are kept: the integration tests lower it, so that a small population's scans take the
# same path as a municipality's.
KEPT = 2


@dataclass(frozen=True)
class ScanHandle:
    """Names one kept conversion of a scan's residents: the scan that asked for it, and the one next scan of the
    same residents (the same values from the same source) that finds it, are given the same handle; others, never.
    Whoever keeps work for that next scan (the exchange's answer order) keys it by the handle."""

    source: str
    serial: int


@dataclass
class _Kept:
    handle: ScanHandle
    targets: tuple[str, ...]
    values: pa.Array
    answer: asyncio.Future  # the conversion: a future while the call is on its way


class NumbersClient:
    def __init__(self, outbound: Outbound, base_url: str, member: str, keeps_over: int, kept: int = KEPT):
        self._outbound = outbound
        self._keeps_over = keeps_over
        self._base_url = base_url
        self._member = member
        self._pending: dict[tuple, list[tuple[str, asyncio.Future]]] = defaultdict(list)
        self._kept: deque[_Kept] = deque(maxlen=kept)
        self._serials = itertools.count(1)

    async def convert_many(
        self, pseudonyms: list[str], source: str, targets: tuple[str, ...]
    ) -> dict[str, list[str | None]]:
        """In calls of at most the number service's batch limit; the answers in the order asked."""
        converted: dict[str, list[str | None]] = {t: [] for t in targets}
        for start in range(0, len(pseudonyms), wire.MAX_BATCH):
            answer = await self._outbound.post(
                self._base_url,
                "/v1/convert",
                {"source": source, "targets": list(targets), "pseudonyms": pseudonyms[start : start + wire.MAX_BATCH]},
                self._member,
                timeout_s=60,
            )
            if answer.status != 200:
                raise Problem("provider-unavailable", f"the number service answered {answer.status}")
            for target, values in answer.json()["converted"].items():
                converted[target].extend(values)
        return converted

    async def convert_arrays(self, values: pa.Array, source: str, targets: tuple[str, ...]) -> dict[str, pa.Array]:
        """Arrow in, Arrow out: a string column per target, in the order asked, null where ``values`` holds a
        null or no pseudonym of ``source``. Calls of at most 500,000 go two at a time. A large conversion kept for a
        scan (convert_scan) and asked again once (the same values and source) is answered as before, with a call
        only for the targets it did not give."""
        converted, _ = await self._converted(values, source, targets, keep=False)
        return converted

    async def convert_scan(
        self, values: pa.Array, source: str, targets: tuple[str, ...]
    ) -> tuple[dict[str, pa.Array], ScanHandle | None]:
        """convert_arrays for a scan's residents, and the handle of the conversion when it is large enough to be
        kept (more than ``keeps_over``): kept for the next scan of the same residents, which is answered from it,
        once, and given the same handle; None when nothing is kept."""
        return await self._converted(values, source, targets, keep=True)

    async def _converted(
        self, values: pa.Array, source: str, targets: tuple[str, ...], keep: bool
    ) -> tuple[dict[str, pa.Array], ScanHandle | None]:
        if pa.types.is_null(values.type):
            values = values.cast(pa.string())
        if len(values) <= self._keeps_over:
            return await self._convert_arrays(values, source, targets), None
        values = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values  # compared whole
        for k, kept in enumerate(self._kept):
            if kept.handle.source == source and set(targets) & set(kept.targets) and kept.values.equals(values):
                del self._kept[k]  # kept for one more use: its memory goes back now
                converted = await asyncio.shield(kept.answer)  # (the same scan's conversion may be on its way)
                missing = tuple(t for t in targets if t not in converted)
                if missing:
                    converted = {**converted, **await self._convert_arrays(values, source, missing)}
                return {t: converted[t] for t in targets}, kept.handle
        if not keep:
            return await self._convert_arrays(values, source, targets), None
        # Kept from the start, so that a second scan of the same residents arriving meanwhile waits for this call.
        kept = _Kept(
            ScanHandle(source, next(self._serials)),
            tuple(targets),
            values,
            asyncio.ensure_future(self._convert_arrays(values, source, targets)),
        )
        self._kept.append(kept)
        try:
            return await asyncio.shield(kept.answer), kept.handle
        except Exception:
            if kept in self._kept:  # a failed conversion is not found again
                self._kept.remove(kept)
            raise

    async def _convert_arrays(self, values: pa.Array, source: str, targets: tuple[str, ...]) -> dict[str, pa.Array]:
        size = min(_ARROW_CALL, wire.ARROW_MAX_BATCH)
        answers: list[dict[str, pa.Array]] = []
        pending: deque[asyncio.Future] = deque()
        try:
            for start in range(0, len(values), size):
                if len(pending) == _IN_FLIGHT:
                    answers.append(await pending.popleft())
                pending.append(asyncio.ensure_future(self._convert_call(values.slice(start, size), source, targets)))
            while pending:
                answers.append(await pending.popleft())
        finally:
            for call in pending:  # after a failure, nobody waits for the rest
                call.cancel()
        return {t: pa.concat_arrays([a[t] for a in answers]) if answers else pa.array([], pa.string()) for t in targets}

    async def _convert_call(self, chunk: pa.Array, source: str, targets: tuple[str, ...]) -> dict[str, pa.Array]:
        answer = await self._outbound.post_bytes(
            self._base_url,
            "/v1/convert",
            wire.request_body(chunk, source, targets),
            wire.ARROW_STREAM,
            self._member,
            timeout_s=120,
        )
        if answer.status != 200:
            raise Problem("provider-unavailable", f"the number service answered {answer.status}")
        try:
            return wire.read_answer(answer.body, tuple(dict.fromkeys(targets)), len(chunk))
        except wire.MalformedConversion as exc:
            raise Problem("bad-provider-answer", f"the number service: {exc}") from None

    async def convert(self, pseudonym: str, source: str, targets: tuple[str, ...]) -> dict[str, str | None]:
        """One pseudonym in each target domain; batched with the other conversions of this loop tick."""
        key = (source, targets)
        future = asyncio.get_running_loop().create_future()
        batch = self._pending[key]
        batch.append((pseudonym, future))
        if len(batch) == 1:
            asyncio.get_running_loop().call_soon(self._schedule, key)
        elif len(batch) >= _FLUSH_AT:
            self._schedule(key)
        return await future

    def _schedule(self, key: tuple) -> None:
        batch = self._pending.pop(key, None)
        if batch:
            asyncio.ensure_future(self._flush(key, batch))

    async def _flush(self, key: tuple, batch: list[tuple[str, asyncio.Future]]) -> None:
        source, targets = key
        try:
            converted = await self.convert_many([p for p, _ in batch], source, targets)
        except Exception as exc:  # every waiting query gets the same failure
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for i, (_, future) in enumerate(batch):
            if not future.done():
                future.set_result({t: converted[t][i] for t in targets})
