"""Signed checkpoints: the log's commitment to its tree root at a size."""

from __future__ import annotations

import base64
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey


def checkpoint_note(log_id: str, tree_size: int, root: bytes, timestamp: str) -> bytes:
    """The signed bytes: log id, size, base64 root and time, one per line."""
    return f"{log_id}\n{tree_size}\n{base64.b64encode(root).decode('ascii')}\n{timestamp}\n".encode()


@dataclass(frozen=True)
class Checkpoint:
    """The tree root at ``tree_size``, signed with the log's Ed25519 key."""

    log_id: str
    tree_size: int
    root: bytes
    timestamp: str
    signature: bytes

    @classmethod
    def sign(cls, key: Ed25519PrivateKey, log_id: str, tree_size: int, root: bytes, timestamp: str) -> Checkpoint:
        """Sign a new checkpoint."""
        signature = key.sign(checkpoint_note(log_id, tree_size, root, timestamp))
        return cls(log_id, tree_size, root, timestamp, signature)

    def note(self) -> bytes:
        """The bytes the signature covers."""
        return checkpoint_note(self.log_id, self.tree_size, self.root, self.timestamp)

    def verify(self, public_key: Ed25519PublicKey) -> bool:
        """Whether the signature is the log key's over this note."""
        try:
            public_key.verify(bytes(self.signature), self.note())
        except InvalidSignature:
            return False
        return True
