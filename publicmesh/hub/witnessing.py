"""The hub's side of witnessing: now and then, its latest checkpoint goes to each witness with a consistency proof
from the size that witness last cosigned; the cosignatures come back into the audit store.

Checkpoints are written by every commit of the audit appender (every few milliseconds under load); a witness is
asked at most once per ``interval_s``, off the exchange's path, about the latest one only."""

from __future__ import annotations

import asyncio
import base64
import logging

import httpx

from publicmesh.audit import AuditLog, Checkpoint, Cosignature

log = logging.getLogger(__name__)


class Witnesses:
    """Submits the hub's checkpoints to the witnesses at ``urls``, and keeps their cosignatures."""

    def __init__(self, audit_log: AuditLog, urls: list[str], interval_s: float = 1.0, timeout_s: float = 5.0):
        self.log, self.urls, self.interval_s, self.timeout_s = audit_log, list(urls), interval_s, timeout_s
        self._held: dict[str, int | None] = {url: None for url in self.urls}  # each witness's size, once known
        self._down: set[str] = set()
        self._behind: dict[str, int] = {}  # witnesses that cosigned more than the log holds: it was cut back

    async def run(self) -> None:
        """Submit until cancelled; a witness that cannot be reached is tried again next round."""
        async with httpx.AsyncClient(timeout=self.timeout_s) as client:
            while True:
                await asyncio.sleep(self.interval_s)
                try:
                    await self.submit_latest(client)
                except Exception:  # a round that fails must not end witnessing
                    log.exception("witnessing round failed")

    async def submit_latest(self, client: httpx.AsyncClient) -> int:
        """One round: the latest checkpoint to every witness not holding it yet; returns how many cosigned."""
        checkpoint = await asyncio.to_thread(self.log.latest_checkpoint)
        cosigned = 0
        for url in self.urls:
            if self._held[url] == checkpoint.tree_size:
                continue
            cosignature = await self._submit(client, url, checkpoint)
            if cosignature is not None:
                await asyncio.to_thread(self.log.add_cosignature, checkpoint.tree_size, cosignature)
                cosigned += 1
        return cosigned

    async def _submit(self, client: httpx.AsyncClient, url: str, checkpoint: Checkpoint) -> Cosignature | None:
        held = self._held[url]
        if held is None:
            try:
                held = await self._ask_size(client, url, checkpoint.log_id)
            except (httpx.HTTPError, ValueError, KeyError) as exc:
                self._warn(url, f"witness {url} not reachable: {exc}")
                return None
            self._held[url] = held
        if held > checkpoint.tree_size:
            # The witness cosigned more than the log now holds: the log was cut back. Only an operator can settle it.
            if self._behind.get(url) != held:  # said once per size, not every round
                self._behind[url] = held
                log.error("witness %s cosigned size %d but the audit log holds %d", url, held, checkpoint.tree_size)
            self._held[url] = None
            return None
        proof = await asyncio.to_thread(self.log.consistency_proof, held, checkpoint.tree_size)
        body = {
            "old_size": held,
            "proof": [base64.b64encode(h).decode("ascii") for h in proof],
            "checkpoint": checkpoint.as_dict(),
        }
        try:
            answer = await client.post(url + "/v1/add-checkpoint", json=body)
        except httpx.HTTPError as exc:
            self._warn(url, f"witness {url} not reachable: {exc}")
            self._held[url] = None
            return None
        if answer.status_code == 200:
            cosignature = Cosignature.from_dict(answer.json()["cosignature"])
            self._held[url] = checkpoint.tree_size
            if url in self._down:
                self._down.discard(url)
                log.warning("witness %s cosigns again (size %d)", url, checkpoint.tree_size)
            return cosignature
        problem = _json(answer)
        if answer.status_code == 409 and isinstance(problem.get("tree_size"), int):
            self._held[url] = problem["tree_size"]  # next round proves from the size the witness holds
        else:
            self._held[url] = None
        log.warning("witness %s refused size %d: %s", url, checkpoint.tree_size, problem.get("detail", answer.text))
        return None

    def _warn(self, url: str, message: str) -> None:
        # Once per outage: a witness being restarted would otherwise fill the log every round.
        if url not in self._down:
            self._down.add(url)
            log.warning(message)

    async def _ask_size(self, client: httpx.AsyncClient, url: str, log_id: str) -> int:
        answer = await client.get(url + "/v1/checkpoint", params={"log_id": log_id})
        if answer.status_code == 404:
            return 0
        answer.raise_for_status()
        return Checkpoint.from_dict(answer.json()["checkpoint"]).tree_size


def _json(answer: httpx.Response) -> dict:
    try:
        doc = answer.json()
    except ValueError:
        return {}
    return doc if isinstance(doc, dict) else {}
