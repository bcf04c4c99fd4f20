"""Witness cosignatures: a witness outside the hub countersigns a checkpoint it checked was consistent with the last
one it cosigned (in the spirit of C2SP tlog-cosignature; our own note format, not interoperable with it)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from publicmesh.audit.checkpoint import Checkpoint

# The header keeps a cosignature from ever being mistaken for the log's own signature over the same note.
HEADER = b"publicmesh-cosignature/v1\n"


def cosigned_message(witness: str, cosigned_at: int, checkpoint: Checkpoint) -> bytes:
    """The bytes a witness signs: the header, its name, the time it cosigned (Unix seconds), then the checkpoint's
    note (log id, size, root and the log's timestamp)."""
    return HEADER + f"witness {witness}\ntime {cosigned_at}\n".encode() + checkpoint.note()


@dataclass(frozen=True)
class Cosignature:
    """One witness's Ed25519 signature over a checkpoint."""

    witness: str
    cosigned_at: int
    signature: bytes

    @classmethod
    def sign(cls, key: Ed25519PrivateKey, witness: str, cosigned_at: int, checkpoint: Checkpoint) -> Cosignature:
        return cls(witness, cosigned_at, key.sign(cosigned_message(witness, cosigned_at, checkpoint)))

    def verify(self, public_key: Ed25519PublicKey, checkpoint: Checkpoint) -> bool:
        """Whether the witness's key signed ``checkpoint`` with this name and time."""
        try:
            public_key.verify(bytes(self.signature), cosigned_message(self.witness, self.cosigned_at, checkpoint))
        except InvalidSignature:
            return False
        return True

    def as_dict(self) -> dict[str, object]:
        return {
            "witness": self.witness,
            "cosigned_at": self.cosigned_at,
            "signature": base64.b64encode(self.signature).decode("ascii"),
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Cosignature:
        """The cosignature of ``as_dict`` (ValueError if it cannot be one)."""
        try:
            witness, at = doc["witness"], doc["cosigned_at"]
            signature = base64.b64decode(doc["signature"], validate=True)
        except (KeyError, TypeError, binascii.Error) as exc:
            raise ValueError(f"not a cosignature: {exc}") from None
        if not isinstance(witness, str) or type(at) is not int:
            raise ValueError("not a cosignature: witness or cosigned_at of the wrong type")
        return cls(witness, at, signature)
