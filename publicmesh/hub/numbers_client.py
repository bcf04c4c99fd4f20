"""The hub's client of the number service: conversions from concurrent queries share one call."""

from __future__ import annotations

import asyncio
from collections import defaultdict, deque

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
# conversion is the first's answer again. The last few large conversions asked to be kept (``recent``) are, and
# are found by exact comparison. Two: the registry's scans' conversion, and the local tax's scan of the same
# municipality, asked at the same moment.
_RECENT = 2
# Only conversions of more pseudonyms than this are kept, by default (Settings.hub_keeps_over: the integration
# tests lower it, so that a small population's scans take the same path as a municipality's).
_RECENT_OVER = 100_000


class NumbersClient:
    def __init__(self, outbound: Outbound, base_url: str, member: str, keeps_over: int | None = None):
        self._outbound = outbound
        self._keeps_over = _RECENT_OVER if keeps_over is None else keeps_over
        self._base_url = base_url
        self._member = member
        self._pending: dict[tuple, list[tuple[str, asyncio.Future]]] = defaultdict(list)
        # (source, targets, values, the conversion: a future while the call is on its way)
        self._recent: deque[tuple[str, tuple[str, ...], pa.Array, asyncio.Future]] = deque(maxlen=_RECENT)

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

    async def convert_arrays(
        self, values: pa.Array, source: str, targets: tuple[str, ...], *, recent: bool = False
    ) -> dict[str, pa.Array]:
        """Arrow in, Arrow out: a string column per target, in the order asked, null where ``values`` holds a
        null or no pseudonym of ``source``. Calls of at most 500,000 go two at a time. A large conversion kept
        (``recent``) and asked again once (the same values and source) is answered as before, with a call
        only for the targets it did not give."""
        if pa.types.is_null(values.type):
            values = values.cast(pa.string())
        if len(values) > self._keeps_over:
            values = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values  # compared whole
            for k, (known_source, known_targets, known_values, answer) in enumerate(self._recent):
                if known_source == source and set(targets) & set(known_targets) and known_values.equals(values):
                    del self._recent[k]  # kept for one more use: its memory goes back now
                    converted = await asyncio.shield(answer)  # (the same scan's conversion may be on its way)
                    missing = tuple(t for t in targets if t not in converted)
                    if missing:
                        converted = {**converted, **await self._convert_arrays(values, source, missing)}
                    return {t: converted[t] for t in targets}
        if not (recent and len(values) > self._keeps_over):
            return await self._convert_arrays(values, source, targets)
        # Kept from the start, so that a second scan of the same residents arriving meanwhile waits for this call.
        answer = asyncio.ensure_future(self._convert_arrays(values, source, targets))
        self._recent.append((source, tuple(targets), values, answer))
        try:
            return await asyncio.shield(answer)
        except Exception:
            self._forget(answer)
            raise

    def _forget(self, answer: asyncio.Future) -> None:
        for k, entry in enumerate(self._recent):
            if entry[3] is answer:
                del self._recent[k]
                return

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
