"""Key material of the number service: one master secret, per-domain keys derived from it."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from publicmesh.storage.private import private_dir, private_file

MASTER_FILE = "numbers.master"


def load_or_create_master(keys_dir: Path) -> bytes:
    """The 32-byte master secret; created once with mode 0600."""
    private_dir(keys_dir)
    path = keys_dir / MASTER_FILE
    if path.exists():
        private_file(path)
        return path.read_bytes()
    secret = os.urandom(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(secret)
    return secret


def derive_key(master: bytes, label: str) -> bytes:
    """A 256-bit key for one purpose (a pseudonym domain, or My Number issue)."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"publicmesh/numbers/v1", info=label.encode()).derive(master)
