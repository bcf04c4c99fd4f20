"""Secret key files of the identity service under the keys folder, and authenticated sealing with them."""

from __future__ import annotations

import os
import secrets
import uuid
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from publicmesh.storage.private import private_dir, private_file

_NONCE = 12


def write_once(path: Path, data: bytes) -> bytes:
    """Create ``path`` (mode 0600) with ``data`` unless it exists; return what the file holds.

    Written aside and linked into place, so concurrent starters agree on one content.
    """
    private_dir(path.parent)
    if not path.exists():
        staging = path.parent / f".{path.name}.{uuid.uuid4().hex}.tmp"
        fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        try:
            os.link(staging, path)
        except FileExistsError:
            pass
        finally:
            staging.unlink(missing_ok=True)
    private_file(path)
    return path.read_bytes()


def load_or_create_secret(keys_dir: Path, name: str) -> bytes:
    """A 32-byte master secret kept in ``keys_dir/name``."""
    secret = write_once(Path(keys_dir) / name, secrets.token_bytes(32))
    if len(secret) != 32:
        raise ValueError(f"{name} does not hold a 32-byte secret")
    return secret


def derive_key(master: bytes, purpose: str) -> bytes:
    """A 256-bit key for one purpose (e.g. one card), derived from a master secret with HKDF-SHA256."""
    return HKDF(hashes.SHA256(), 32, salt=None, info=purpose.encode()).derive(master)


def seal(key: bytes, plaintext: bytes, context: str) -> bytes:
    """AES-256-GCM; ``context`` is bound as associated data so a sealed value cannot be moved elsewhere."""
    nonce = secrets.token_bytes(_NONCE)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, context.encode())


def unseal(key: bytes, sealed: bytes, context: str) -> bytes:
    """The plaintext of ``seal`` (raises ``cryptography.exceptions.InvalidTag`` if tampered or misplaced)."""
    return AESGCM(key).decrypt(sealed[:_NONCE], sealed[_NONCE:], context.encode())
