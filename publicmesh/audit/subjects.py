"""The subjects of one exchange record about many persons (a bulk exchange, a batch of notices).

They are sorted and unique, cut into chunks of CHUNK subjects, and committed to by an RFC 9162 Merkle tree whose
leaves are the chunks (leaf data: the chunk as a compact JSON array). The record's leaf in the log carries that
tree's root, so each person has a two-level proof: their chunk in the record's subject tree, the record in the log.
Hashing a chunk instead of each subject costs one hash per CHUNK persons, which a whole municipality needs.

Chunks are stored in pages of PAGE_CHUNKS chunks: a page is a perfect subtree, so a proof needs the one page that
holds the person and the stored roots of the others.
"""

from __future__ import annotations

import base64
import bisect
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from hashlib import sha256

import numpy as np
import orjson
import pyarrow as pa

from publicmesh.audit import merkle

CHUNK = 16  # subjects per leaf of the subject tree; a proof shows the person the other CHUNK - 1 (pseudonyms)
PAGE_CHUNKS = 64  # a power of two, so that every full page is a perfect subtree
PAGE = CHUNK * PAGE_CHUNKS


@dataclass(frozen=True)
class SubjectPage:
    """PAGE sorted subjects (fewer in the last page), as stored: the first, the JSON array, the subtree root."""

    number: int
    first: str
    subjects_json: bytes
    root: bytes


@dataclass(frozen=True)
class SubjectTree:
    count: int
    root: bytes
    pages: tuple[SubjectPage, ...]

    @property
    def chunk_count(self) -> int:
        return chunk_count(self.count)


@dataclass(frozen=True)
class SubjectProof:
    """That one subject is in a record's subject tree: its chunk, the chunk's index and the path to the root."""

    chunk: list[str]
    chunk_index: int
    chunk_count: int
    path: list[bytes]

    def as_dict(self) -> dict:
        return {
            "chunk": self.chunk,
            "chunk_index": self.chunk_index,
            "chunk_count": self.chunk_count,
            "path": [base64.b64encode(h).decode() for h in self.path],
        }


def chunk_count(count: int) -> int:
    return -(-count // CHUNK)


def chunk_leaf(chunk: Sequence[str]) -> bytes:
    """The leaf hash of one chunk: SHA-256(0x00 || its compact JSON array)."""
    return sha256(merkle.LEAF_PREFIX + orjson.dumps(list(chunk))).digest()


def build(subjects: Sequence[str] | pa.Array | pa.ChunkedArray) -> SubjectTree:
    """The subject tree of these subjects (in any order, repeats counted once)."""
    return _build(subjects, _fixed_width(subjects))


class KeptTrees:
    """The last large subject trees built for a scan's record, each kept for the next record of the very same
    subjects in the same order (a municipality's person and household scans name the same residents), which is
    given that tree again, once: then it is let go. Owned by the audit log; trees of more than ``keeps_over``
    subjects (Settings.hub_keeps_over) are kept, ``kept`` at most (one: the publisher reads one municipality
    ahead)."""

    def __init__(self, keeps_over: int, kept: int = 1):
        self.keeps_over = keeps_over
        self._trees: deque[tuple[np.ndarray, SubjectTree]] = deque(maxlen=kept)
        self._lock = threading.Lock()

    def build(self, subjects: Sequence[str] | pa.Array | pa.ChunkedArray, *, keep: bool = False) -> SubjectTree:
        """build(subjects), or the tree kept for the same subjects; ``keep``: kept for the next record of them."""
        fixed = _fixed_width(subjects)
        if fixed is None or len(fixed) <= self.keeps_over:
            return _build(subjects, fixed)
        with self._lock:
            for k, (known, tree) in enumerate(self._trees):
                if known.shape == fixed.shape and np.array_equal(known, fixed):
                    del self._trees[k]  # kept for one more use: its memory goes back now
                    return tree
        tree = _build_fixed(fixed)
        if keep:
            with self._lock:
                self._trees.append((fixed, tree))
        return tree

    def __len__(self) -> int:
        return len(self._trees)


def _build(subjects, fixed: np.ndarray | None) -> SubjectTree:
    if fixed is not None:
        return _build_fixed(fixed)
    values = subjects.to_pylist() if isinstance(subjects, (pa.Array, pa.ChunkedArray)) else list(subjects)
    for value in values:
        if not isinstance(value, str):
            raise TypeError(f"subject must be str, got {type(value).__name__}")
        value.encode("utf-8")  # a lone surrogate cannot be logged
    ordered = sorted(set(values))
    pages = []
    for number, start in enumerate(range(0, len(ordered), PAGE)):
        part = ordered[start : start + PAGE]
        leaves = [chunk_leaf(part[i : i + CHUNK]) for i in range(0, len(part), CHUNK)]
        pages.append(SubjectPage(number, part[0], orjson.dumps(part), merkle.root(leaves)))
    return SubjectTree(len(ordered), merkle.root([p.root for p in pages]), tuple(pages))


def _fixed_width(subjects) -> np.ndarray | None:
    """An N×W byte matrix when the subjects are an Arrow string array of one width, without nulls, of characters
    JSON writes as they are (printable ASCII but the quote and the backslash): pseudonyms are."""
    if not isinstance(subjects, (pa.Array, pa.ChunkedArray)) or len(subjects) == 0:
        return None
    array = subjects.combine_chunks() if isinstance(subjects, pa.ChunkedArray) else subjects
    if array.type != pa.string() or array.null_count:
        return None
    offsets = np.frombuffer(array.buffers()[1], dtype=np.int32)[array.offset : array.offset + len(array) + 1]
    width = int(offsets[1] - offsets[0])
    if width == 0 or not np.array_equal(np.diff(offsets), np.full(len(array), width, dtype=np.int32)):
        return None
    data = np.frombuffer(array.buffers()[2], dtype=np.uint8)[offsets[0] : offsets[-1]]
    if data.min() < 0x20 or data.max() > 0x7E or (data == ord('"')).any() or (data == ord("\\")).any():
        return None
    return data.reshape(len(array), width)


def _build_fixed(rows: np.ndarray) -> SubjectTree:
    """build() for fixed-width subjects in columns: sorted by numpy, JSON laid out by numpy, one hash per chunk."""
    count, width = rows.shape
    ordered = _sorted_unique(rows)
    count = len(ordered)
    token = width + 3  # "subject",
    tokens = np.empty((count, token), dtype=np.uint8)
    tokens[:, 0] = tokens[:, -2] = ord('"')
    tokens[:, 1:-2] = ordered
    tokens[:, -1] = ord(",")
    flat = tokens.reshape(-1)
    full = count // CHUNK
    # Each full chunk as its leaf data, 0x00 [ "a","b",... ] in one row: hashed without another copy.
    chunk_bytes = 2 + CHUNK * token
    leaf_data = np.empty((full, chunk_bytes), dtype=np.uint8)
    leaf_data[:, 0], leaf_data[:, 1] = 0, ord("[")
    leaf_data[:, 2:] = flat[: full * CHUNK * token].reshape(full, CHUNK * token)
    leaf_data[:, -1] = ord("]")
    view = leaf_data.reshape(-1).data  # a memoryview of the array's bytes
    leaves = [sha256(view[i : i + chunk_bytes]).digest() for i in range(0, full * chunk_bytes, chunk_bytes)]
    if count % CHUNK:
        rest = flat[full * CHUNK * token :].tobytes()
        leaves.append(sha256(b"\x00[" + rest[:-1] + b"]").digest())
    pages = []
    for number, start in enumerate(range(0, count, PAGE)):
        end = min(start + PAGE, count)
        text = b"[" + flat[start * token : end * token - 1].tobytes() + b"]"
        first = ordered[start].tobytes().decode("ascii")
        pages.append(SubjectPage(number, first, text, merkle.root(leaves[start // CHUNK : chunk_count(end)])))
    return SubjectTree(count, merkle.root([p.root for p in pages]), tuple(pages))


def _sorted_unique(rows: np.ndarray) -> np.ndarray:
    """The rows in byte order, repeats dropped. Sorting by the first 8 bytes as one integer is much faster than
    comparing whole rows; when two rows share those 8 bytes, whole rows are compared instead."""
    count, width = rows.shape
    head = np.zeros((count, 8), dtype=np.uint8)
    head[:, : min(width, 8)] = rows[:, :8]
    keys = head.view(">u8").reshape(count)
    order = np.argsort(keys)
    ordered_keys = keys[order]
    if not (ordered_keys[1:] == ordered_keys[:-1]).any():  # all first 8 bytes differ: sorted, no two rows alike
        return np.take(rows, order, axis=0)  # (a row at a time: several times faster than rows[order])
    ordered = np.sort(np.ascontiguousarray(rows).view(f"S{width}").reshape(count))
    ordered = ordered.view(np.uint8).reshape(count, width)
    keep = np.ones(count, dtype=bool)
    keep[1:] = (ordered[1:] != ordered[:-1]).any(axis=1)
    return ordered[keep]


def page_subjects(page_json: bytes | str) -> list[str]:
    """A stored page's subjects; ValueError when it is not a JSON array of strings."""
    values = orjson.loads(page_json)
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise ValueError("a subject page is a JSON array of strings")
    return values


def page_root(subjects: Sequence[str]) -> bytes:
    """The root of one page's chunks."""
    return merkle.root([chunk_leaf(subjects[i : i + CHUNK]) for i in range(0, len(subjects), CHUNK)])


def prove(
    subject: str, page_number: int, page: Sequence[str], page_roots: Sequence[bytes], count: int
) -> SubjectProof | None:
    """The proof that ``subject`` is in the tree, from its page (``page_number``, subjects) and every page's root;
    None when the page does not hold the subject."""
    at = bisect.bisect_left(page, subject)
    if at == len(page) or page[at] != subject:
        return None
    chunks = [page[i : i + CHUNK] for i in range(0, len(page), CHUNK)]
    leaves = [chunk_leaf(c) for c in chunks]
    base = page_number * PAGE_CHUNKS
    total = chunk_count(count)

    def subtree(start: int, end: int) -> bytes:
        # Below a page the path stays in the person's own page; above it, ranges are whole pages.
        if base <= start and end <= base + len(leaves):
            return merkle.root(leaves[start - base : end - base])
        if start % PAGE_CHUNKS or (end % PAGE_CHUNKS and end != total):
            raise ValueError(f"chunks {start}..{end} are neither inside page {page_number} nor whole pages")
        return merkle.root(page_roots[start // PAGE_CHUNKS : -(-end // PAGE_CHUNKS)])

    index = base + at // CHUNK
    return SubjectProof(list(chunks[at // CHUNK]), index, total, merkle.inclusion_path(index, total, subtree))


def verify(subject: str, proof: SubjectProof, root: bytes, count: int) -> bool:
    """The person's check: their subject is in the chunk, and the chunk is leaf ``chunk_index`` of the tree."""
    return subject in proof.chunk and verify_chunk(proof, root, count)


def verify_chunk(proof: SubjectProof, root: bytes, count: int) -> bool:
    """The chunk is leaf ``chunk_index`` of the tree of ``count`` subjects with this root."""
    return (
        proof.chunk_count == chunk_count(count)
        and len(proof.chunk) <= CHUNK
        and merkle.verify_inclusion(proof.chunk_index, proof.chunk_count, chunk_leaf(proof.chunk), proof.path, root)
    )


def verify_in_leaf(proof: dict, leaf: bytes) -> bool:
    """A subject proof as the hub answers it (JSON), checked against the subject tree its record's leaf names."""
    try:
        tree = orjson.loads(leaf)["subjects"]
        parsed = SubjectProof(
            [str(s) for s in proof["chunk"]],
            int(proof["chunk_index"]),
            int(proof["chunk_count"]),
            [base64.b64decode(h) for h in proof["path"]],
        )
        return verify_chunk(parsed, base64.b64decode(tree["root"]), int(tree["count"]))
    except (KeyError, TypeError, ValueError, orjson.JSONDecodeError):
        return False
