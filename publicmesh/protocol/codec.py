"""Vectorised text form of 16-byte pseudonyms: unpadded base64url, 22 characters each."""

from __future__ import annotations

import base64

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

PSEUDONYM_LENGTH = 22
_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")
_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_INVALID = 255
_SLICE = 1 << 16
_PLACEHOLDER = "A" * PSEUDONYM_LENGTH
# Character → 6-bit value. Only the url-safe alphabet: '+' and '/' would be a second spelling of '-' and '_'.
_SEXTET = np.full(256, _INVALID, dtype=np.uint8)
_SEXTET[np.frombuffer(_ALPHABET, dtype=np.uint8)] = np.arange(64, dtype=np.uint8)


def encode(blocks: np.ndarray) -> pa.StringArray:
    """N×16 bytes → N strings. Padding each block to 18 bytes aligns base64 groups per block."""
    count = len(blocks)
    chars = np.empty((count, PSEUDONYM_LENGTH), dtype=np.uint8)
    for start in range(0, count, _SLICE):  # slices, for the same reason as in decoding
        part = blocks[start : start + _SLICE]
        padded = np.zeros((len(part), 18), dtype=np.uint8)
        padded[:, :16] = part
        text = base64.b64encode(padded.tobytes()).translate(_TO_URLSAFE)
        chars[start : start + len(part)] = np.frombuffer(text, dtype=np.uint8).reshape(-1, 24)[:, :PSEUDONYM_LENGTH]
    offsets = np.arange(0, (count + 1) * PSEUDONYM_LENGTH, PSEUDONYM_LENGTH, dtype=np.int32)
    return pa.StringArray.from_buffers(count, pa.py_buffer(offsets), pa.py_buffer(chars))


def decode(pseudonyms: list | pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """N strings → (N×16 blocks, mask of well-formed entries). Malformed entries and nulls decode to zeros."""
    if isinstance(pseudonyms, pa.ChunkedArray):
        parts = [decode(chunk) for chunk in pseudonyms.chunks]
        if not parts:
            return np.zeros((0, 16), dtype=np.uint8), np.zeros(0, dtype=bool)
        return np.concatenate([b for b, _ in parts]), np.concatenate([m for _, m in parts])
    if not isinstance(pseudonyms, pa.Array):
        pseudonyms = _from_python(pseudonyms)
    chars, present = _characters(pseudonyms)
    return _decode_characters(chars, present)


def _from_python(values) -> pa.StringArray:
    # Anything but an ASCII string is malformed; as a null it cannot trip Arrow's UTF-8 encoding.
    return pa.array([v if isinstance(v, str) and v.isascii() else None for v in values], pa.string())


def _characters(array: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """The N×22 characters of an Arrow string array, and which entries are 22 bytes and not null."""
    if not (pa.types.is_string(array.type) or pa.types.is_large_string(array.type)):
        raise TypeError(f"pseudonyms are strings, not {array.type}")
    present = np.ones(len(array), dtype=bool)
    if not _regular(array):
        # Irregular: put a placeholder where an entry is null or of another length, so the values lie back to back.
        fits = pc.fill_null(pc.equal(pc.binary_length(array), PSEUDONYM_LENGTH), False)
        array = pc.if_else(fits, array, pa.scalar(_PLACEHOLDER, array.type))
        present = fits.to_numpy(zero_copy_only=False)
    _, offsets, data = array.buffers()
    if len(array) == 0:
        return np.zeros((0, PSEUDONYM_LENGTH), dtype=np.uint8), present
    first = _offsets(array, offsets)[0]
    values = np.frombuffer(data, dtype=np.uint8)[first : first + len(array) * PSEUDONYM_LENGTH]
    return values.reshape(-1, PSEUDONYM_LENGTH), present


def _offsets(array: pa.Array, buffer: pa.Buffer) -> np.ndarray:
    dtype = np.int64 if pa.types.is_large_string(array.type) else np.int32
    return np.frombuffer(buffer, dtype=dtype)[array.offset : array.offset + len(array) + 1]


def _regular(array: pa.Array) -> bool:
    """No nulls and every value 22 bytes: the data buffer is then the N×22 character matrix itself."""
    if len(array) == 0:
        return True
    if array.null_count:
        return False
    offsets = _offsets(array, array.buffers()[1])
    return bool((np.diff(offsets) == PSEUDONYM_LENGTH).all())


def _decode_characters(chars: np.ndarray, present: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    blocks = np.empty((len(chars), 16), dtype=np.uint8)
    well_formed = np.empty(len(chars), dtype=bool)
    # In slices that stay in cache: over the whole matrix at once the temporaries cost more than the work.
    for start in range(0, len(chars), _SLICE):
        rows = slice(start, start + _SLICE)
        blocks[rows], well_formed[rows] = _decode_slice(chars[rows], present[rows])
    return blocks, well_formed


def _decode_slice(chars: np.ndarray, present: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    sextets = np.take(_SEXTET, chars)
    # Twenty characters are five groups of four sextets, each 24 bits (three bytes) once packed.
    quads = np.ascontiguousarray(sextets[:, :20]).view("<u4")
    tail = sextets[:, 20] | sextets[:, 21]
    # A valid sextet is below 64, so an invalid character shows in the top two bits of its byte.
    # The last character carries 4 spare bits; only the canonical (zero) form is a pseudonym.
    well_formed = present & ~(quads & 0xC0C0C0C0).any(axis=1) & (tail < 64) & ((sextets[:, 21] & 0x0F) == 0)
    groups = ((quads & 0x3F) << 18) | ((quads & 0x3F00) << 4) | ((quads & 0x3F0000) >> 10) | (quads >> 24)
    big_endian = groups.byteswap().view(np.uint8).reshape(-1, 5, 4)
    blocks = np.empty((len(chars), 16), dtype=np.uint8)
    blocks[:, :15].reshape(-1, 5, 3)[:] = big_endian[:, :, 1:]
    blocks[:, 15] = (sextets[:, 20] << 2) | (sextets[:, 21] >> 4)
    blocks[~well_formed] = 0
    return blocks, well_formed
