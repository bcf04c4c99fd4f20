"""Vectorised text form of 16-byte pseudonyms: unpadded base64url, 22 characters each."""

from __future__ import annotations

import base64
import binascii

import numpy as np
import pyarrow as pa

PSEUDONYM_LENGTH = 22
_TO_STANDARD = bytes.maketrans(b"-_", b"+/")
_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")


def encode(blocks: np.ndarray) -> pa.StringArray:
    """N×16 bytes → N strings. Padding each block to 18 bytes aligns base64 groups per block."""
    count = len(blocks)
    padded = np.zeros((count, 18), dtype=np.uint8)
    padded[:, :16] = blocks
    text = base64.b64encode(padded.tobytes()).translate(_TO_URLSAFE)
    chars = np.frombuffer(text, dtype=np.uint8).reshape(count, 24)[:, :PSEUDONYM_LENGTH]
    offsets = np.arange(0, (count + 1) * PSEUDONYM_LENGTH, PSEUDONYM_LENGTH, dtype=np.int32)
    return pa.StringArray.from_buffers(count, pa.py_buffer(offsets), pa.py_buffer(np.ascontiguousarray(chars)))


def decode(pseudonyms: list[str] | pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """N strings → (N×16 blocks, mask of well-formed entries). Malformed entries decode to zeros."""
    values = pseudonyms.to_pylist() if isinstance(pseudonyms, pa.Array) else list(pseudonyms)
    count = len(values)
    well_formed = np.fromiter(
        (isinstance(v, str) and len(v) == PSEUDONYM_LENGTH and v.isascii() for v in values), dtype=bool, count=count
    )
    chunk = [v if ok else "A" * PSEUDONYM_LENGTH for v, ok in zip(values, well_formed)]
    text = ("AA".join(chunk) + "AA").encode("ascii").translate(_TO_STANDARD) if count else b""
    try:
        raw = binascii.a2b_base64(text, strict_mode=True)
    except binascii.Error:
        return _decode_one_by_one(values, well_formed)
    padded = np.frombuffer(raw, dtype=np.uint8).reshape(count, 18)
    # The last character carries 4 spare bits; only the canonical (zero) form is a pseudonym.
    well_formed &= padded[:, 16] == 0
    return padded[:, :16].copy(), well_formed


def _decode_one_by_one(values: list, well_formed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # A bad character somewhere: find which entries are at fault instead of failing the batch.
    blocks = np.zeros((len(values), 16), dtype=np.uint8)
    for i, value in enumerate(values):
        if not well_formed[i]:
            continue
        try:
            raw = binascii.a2b_base64((value + "AA").encode("ascii").translate(_TO_STANDARD), strict_mode=True)
            blocks[i] = np.frombuffer(raw[:16], dtype=np.uint8)
            well_formed[i] = raw[16] == 0
        except binascii.Error:
            well_formed[i] = False
    return blocks, well_formed
