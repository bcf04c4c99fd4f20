"""Ed25519 signing keys kept as PEM under the keys folder: the audit log's, and a witness's (in its own folder)."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from publicmesh.storage.private import private_dir, private_file

KEY_FILE = "audit.key"
PUBLIC_FILE = "audit.pub"


def load_or_create_audit_key(keys_dir: Path) -> Ed25519PrivateKey:
    """Load ``keys_dir/audit.key``, creating the folder and a fresh key (mode 0600) when missing."""
    return load_or_create_key(keys_dir, "audit")


def witness_keys_dir(keys_dir: Path) -> Path:
    """The witness's own key folder (0700): the hub's keys are not in it, and it is in none of the hub's."""
    return Path(keys_dir) / "witness"


def load_or_create_witness_key(keys_dir: Path) -> Ed25519PrivateKey:
    return load_or_create_key(witness_keys_dir(keys_dir), "witness")


def load_witness_public_key(keys_dir: Path) -> Ed25519PublicKey:
    """The key a witness's cosignatures verify under (``keys/witness/witness.pub``)."""
    return load_public_key(witness_keys_dir(keys_dir), "witness")


def load_or_create_key(keys_dir: Path, name: str) -> Ed25519PrivateKey:
    """Load ``keys_dir/<name>.key``, creating the folder and a fresh key (mode 0600) when missing; its public key
    is published beside it as ``<name>.pub``."""
    keys_dir = Path(keys_dir)
    private_dir(keys_dir)
    key_file = f"{name}.key"
    path = keys_dir / key_file
    private_file(path)
    if not path.exists():
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        # Write aside, then link into place: a concurrent starter either wins or reads a complete file.
        staging = keys_dir / f".{key_file}.{uuid.uuid4().hex}.tmp"
        _write_private(staging, pem)
        try:
            os.link(staging, path)
        except FileExistsError:
            pass
        finally:
            staging.unlink(missing_ok=True)
        _write_public(keys_dir, _load_private(path).public_key(), f"{name}.pub")
    return _load_private(path)


def load_audit_public_key(keys_dir: Path) -> Ed25519PublicKey:
    """The verification key: ``audit.pub`` when published, else derived from ``audit.key``."""
    return load_public_key(keys_dir, "audit")


def load_public_key(keys_dir: Path, name: str) -> Ed25519PublicKey:
    """The verification key: ``<name>.pub`` when published, else derived from ``<name>.key``."""
    keys_dir = Path(keys_dir)
    public_path = keys_dir / f"{name}.pub"
    if public_path.exists():
        key = serialization.load_pem_public_key(public_path.read_bytes())
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError(f"{public_path} is not an Ed25519 public key")
        return key
    private_path = keys_dir / f"{name}.key"
    if not private_path.exists():
        raise FileNotFoundError(f"no {name} key in {keys_dir}")
    return _load_private(private_path).public_key()


def _load_private(path: Path) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} is not an Ed25519 private key")
    return key


def _write_private(path: Path, pem: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, pem)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(path, 0o600)  # the umask may not be the only thing deciding a file's mode


def _write_public(keys_dir: Path, public_key: Ed25519PublicKey, public_file: str) -> None:
    pem = public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    staging = keys_dir / f".{public_file}.{uuid.uuid4().hex}.tmp"
    staging.write_bytes(pem)
    os.replace(staging, keys_dir / public_file)
