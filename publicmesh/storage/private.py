"""Owner-only files and folders: the stores, keys, payout files and demo credentials hold names, addresses, bank
accounts and secrets, so they are 0600 in 0700 folders whatever the umask, and older ones are tightened."""

from __future__ import annotations

import os
import stat
import uuid
from pathlib import Path

FILE_MODE = 0o600
DIR_MODE = 0o700


def private_dir(path: Path | str) -> Path:
    """Create ``path`` and its missing parents with mode 0700, and tighten it if it exists and is this user's
    (never a shared folder with the sticky bit, such as /tmp)."""
    path = Path(path)
    missing = [p for p in (path, *path.parents) if not p.exists()]
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=DIR_MODE)
        except FileExistsError:
            continue  # another process made it first
        os.chmod(folder, DIR_MODE)  # mkdir's mode passes through the umask
    _tighten(path, DIR_MODE)
    return path


def private_file(path: Path | str) -> None:
    """Tighten an existing file of this user's to 0600."""
    if os.path.lexists(path):
        _tighten(Path(path), FILE_MODE)


def create_private_file(path: Path | str) -> None:
    """Create ``path`` empty with mode 0600 unless it exists (then tighten it).

    An existing file is never opened: closing any descriptor of a SQLite file drops every POSIX lock this process
    holds on it, those of its open connections included (SQLite's documented pitfall), and a connection that lost
    its read lock may read past what a checkpoint overwrote."""
    if not os.path.lexists(path):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        except FileExistsError:
            pass  # another process made it first
        else:
            os.close(fd)
    private_file(path)


def write_private(path: Path | str, data: bytes) -> None:
    """Replace ``path`` with ``data`` at once, mode 0600 from the moment it exists (in a 0700 folder)."""
    path = Path(path)
    private_dir(path.parent)
    staging = path.parent / f".{path.name}.{uuid.uuid4().hex}.tmp"
    fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.chmod(staging, FILE_MODE)
        os.replace(staging, path)
    finally:
        staging.unlink(missing_ok=True)


def _tighten(path: Path, mode: int) -> None:
    st = os.stat(path)
    if st.st_uid != os.geteuid() or st.st_mode & stat.S_ISVTX or (stat.S_IMODE(st.st_mode) & 0o077) == 0:
        return
    os.chmod(path, mode)
