"""What a witness decides: cosign a checkpoint signed by the log and consistent with the last one it cosigned."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from publicmesh.audit.checkpoint import Checkpoint
from publicmesh.audit.cosignature import Cosignature
from publicmesh.audit.merkle import verify_consistency
from publicmesh.problems import Problem
from publicmesh.witness.store import WitnessStore

WITNESS_NAME = "publicmesh-witness"


class Witness:
    """Cosigns checkpoints of the logs it follows (log id → the log's public key, loaded when first needed)."""

    def __init__(
        self,
        key: Ed25519PrivateKey,
        store: WitnessStore,
        logs: dict[str, Callable[[], Ed25519PublicKey]],
        name: str = WITNESS_NAME,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.key, self.store, self.name, self.clock = key, store, name, clock
        self._log_keys = logs
        self._loaded: dict[str, Ed25519PublicKey] = {}

    def public_pem(self) -> str:
        return (
            self.key.public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode("ascii")
        )

    def log_key(self, log_id: str) -> Ed25519PublicKey:
        if log_id not in self._log_keys:
            raise Problem("unknown-log", f"this witness does not follow the log {log_id!r}")
        if log_id not in self._loaded:
            try:
                self._loaded[log_id] = self._log_keys[log_id]()
            except (OSError, ValueError) as exc:
                raise Problem("unknown-log", f"the public key of the log {log_id!r} is not available: {exc}") from exc
        return self._loaded[log_id]

    def latest(self, log_id: str) -> tuple[Checkpoint, Cosignature] | None:
        self.log_key(log_id)
        return self.store.latest(log_id)

    def add_checkpoint(self, old_size: int, proof: Sequence[bytes], checkpoint: Checkpoint) -> Cosignature:
        """Cosign ``checkpoint`` if the log signed it and ``proof`` shows it extends the witness's last one, which
        the submitter says is at ``old_size``; otherwise a problem: 409 naming the size the witness holds."""
        if not checkpoint.verify(self.log_key(checkpoint.log_id)):
            raise Problem("bad-checkpoint", f"the checkpoint at size {checkpoint.tree_size} is not signed by the log")
        head = self.store.latest(checkpoint.log_id)
        held = head[0].tree_size if head else 0
        if old_size != held:
            raise self._conflict(held, f"the submission is from size {old_size}, the last one cosigned is size {held}")
        if checkpoint.tree_size < held:
            raise self._conflict(held, f"size {checkpoint.tree_size} is smaller than the {held} already cosigned")
        if head is not None and not verify_consistency(
            held, checkpoint.tree_size, head[0].root, checkpoint.root, proof
        ):
            raise self._conflict(
                held, f"the proof does not show size {checkpoint.tree_size} extends the size {held} cosigned (a fork)"
            )
        cosignature = Cosignature.sign(self.key, self.name, int(self.clock()), checkpoint)
        if not self.store.advance(held if head else None, checkpoint, cosignature):
            now = self.store.latest(checkpoint.log_id)
            raise self._conflict(now[0].tree_size if now else 0, "another submission was cosigned first")
        return cosignature

    @staticmethod
    def _conflict(held: int, detail: str) -> Problem:
        return Problem("witness-conflict", detail, tree_size=held)
