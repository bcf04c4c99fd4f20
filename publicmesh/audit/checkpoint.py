"""Signed checkpoints: the log's commitment to its tree root at a size."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

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

    def as_dict(self) -> dict[str, object]:
        """The checkpoint as JSON fields, bytes in base64."""
        return {
            "log_id": self.log_id,
            "tree_size": self.tree_size,
            "root": base64.b64encode(self.root).decode("ascii"),
            "timestamp": self.timestamp,
            "signature": base64.b64encode(self.signature).decode("ascii"),
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Checkpoint:
        """The checkpoint of ``as_dict`` (ValueError if it cannot be one)."""
        try:
            log_id, size, timestamp = doc["log_id"], doc["tree_size"], doc["timestamp"]
            root = base64.b64decode(doc["root"], validate=True)
            signature = base64.b64decode(doc["signature"], validate=True)
        except (KeyError, TypeError, binascii.Error) as exc:
            raise ValueError(f"not a checkpoint: {exc}") from None
        if not (isinstance(log_id, str) and isinstance(timestamp, str)) or type(size) is not int or size < 0:
            raise ValueError("not a checkpoint: log_id, tree_size or timestamp of the wrong type")
        if len(root) != 32:
            raise ValueError("not a checkpoint: the root is not 32 bytes")
        return cls(log_id, size, root, timestamp, signature)

    def verify(self, public_key: Ed25519PublicKey) -> bool:
        """Whether the signature is the log key's over this note."""
        try:
            public_key.verify(bytes(self.signature), self.note())
        except InvalidSignature:
            return False
        return True
