"""Merkle tree hashing, proofs and verification exactly as RFC 9162 (Certificate Transparency v2) §2.1."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

# The tree hash of the leaves in positions [start, end) of some list; proofs are built from it.
SubtreeRoot = Callable[[int, int], bytes]

_sha256 = hashlib.sha256


LEAF_PREFIX = b"\x00"


def leaf_hash(data: bytes) -> bytes:
    """MTH({d}) = SHA-256(0x00 || d)."""
    return _sha256(LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Interior node: SHA-256(0x01 || left || right)."""
    return _sha256(b"\x01" + left + right).digest()


def split_point(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def root(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH(D[n]) computed level by level (no recursion)."""
    level = list(leaf_hashes)
    if not level:
        return EMPTY_ROOT
    sha = _sha256
    # Pairing neighbours and carrying an odd last node up unchanged builds the same tree as RFC 9162's
    # "split at the largest power of two", because every left subtree of that split is perfect.
    while len(level) > 1:
        paired = [sha(b"\x01" + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def inclusion_path(index: int, size: int, subtree_root: SubtreeRoot) -> list[bytes]:
    """PATH(m, D[n]) of §2.1.3.1, bottom-up, with subtree hashes supplied by ``subtree_root``."""
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is outside a tree of size {size}")
    top_down: list[bytes] = []
    start, end = 0, size
    while end - start > 1:
        k = split_point(end - start)
        if index < start + k:
            top_down.append(subtree_root(start + k, end))
            end = start + k
        else:
            top_down.append(subtree_root(start, start + k))
            start += k
    return top_down[::-1]


def consistency_path(old_size: int, new_size: int, subtree_root: SubtreeRoot) -> list[bytes]:
    """PROOF(m, D[n]) = SUBPROOF(m, D[n], true) of §2.1.4.1, with subtree hashes from ``subtree_root``."""
    if not 0 <= old_size <= new_size:
        raise ValueError(f"no consistency proof from size {old_size} to size {new_size}")
    if old_size in (0, new_size):
        return []
    top_down: list[bytes] = []
    start, end, m, whole_old_tree = 0, new_size, old_size, True
    while True:
        if m == end - start:
            if not whole_old_tree:
                top_down.append(subtree_root(start, end))
            break
        k = split_point(end - start)
        if m <= k:
            top_down.append(subtree_root(start + k, end))
            end = start + k
        else:
            top_down.append(subtree_root(start, start + k))
            start += k
            m -= k
            whole_old_tree = False
    return top_down[::-1]


def _list_subtree_root(leaf_hashes: Sequence[bytes]) -> SubtreeRoot:
    return lambda start, end: root(leaf_hashes[start:end])


def inclusion_proof(index: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """The inclusion proof of leaf ``index`` in the tree of all ``leaf_hashes``."""
    return inclusion_path(index, len(leaf_hashes), _list_subtree_root(leaf_hashes))


def consistency_proof(old_size: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """The consistency proof between the first ``old_size`` leaves and all ``leaf_hashes``."""
    return consistency_path(old_size, len(leaf_hashes), _list_subtree_root(leaf_hashes))


def _is_hash(value: object) -> bool:
    return isinstance(value, bytes | bytearray) and len(value) == HASH_SIZE


def verify_inclusion(index: int, tree_size: int, leaf: bytes, proof: Sequence[bytes], root_hash: bytes) -> bool:
    """The §2.1.3.2 verification of an inclusion proof."""
    if not (0 <= index < tree_size and _is_hash(leaf) and _is_hash(root_hash)):
        return False
    if not all(_is_hash(p) for p in proof):
        return False
    fn, sn, r = index, tree_size - 1, bytes(leaf)
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root_hash


def verify_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]) -> bool:
    """The §2.1.4.2 verification of a consistency proof (plus the trivial sizes 0 and old == new)."""
    if not (0 <= old_size <= new_size and _is_hash(old_root) and _is_hash(new_root)):
        return False
    if not all(_is_hash(p) for p in proof):
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    if old_size == 0:
        # Every tree extends the empty one; only the empty root is a valid "old" root.
        return not proof and old_root == EMPTY_ROOT
    if not proof:
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, bytes(old_root))
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == old_root and sr == new_root and sn == 0


class CompactRange:
    """The frontier of a growing tree: one perfect-subtree root per set bit of the size, largest first."""

    __slots__ = ("_size", "_hashes")

    def __init__(self, size: int = 0, hashes: Iterable[bytes] = ()) -> None:
        hashes = [bytes(h) for h in hashes]
        if size < 0 or len(hashes) != size.bit_count() or not all(len(h) == HASH_SIZE for h in hashes):
            raise ValueError(f"a frontier of size {size} needs {max(size, 0).bit_count()} hashes of 32 bytes")
        self._size = size
        self._hashes = hashes

    @classmethod
    def from_bytes(cls, size: int, blob: bytes) -> CompactRange:
        """Rebuild a frontier stored as its hashes concatenated."""
        if len(blob) % HASH_SIZE:
            raise ValueError("frontier blob is not a whole number of hashes")
        return cls(size, (blob[i : i + HASH_SIZE] for i in range(0, len(blob), HASH_SIZE)))

    def to_bytes(self) -> bytes:
        """The hashes concatenated, for storage next to the size."""
        return b"".join(self._hashes)

    @property
    def size(self) -> int:
        return self._size

    @property
    def hashes(self) -> tuple[bytes, ...]:
        return tuple(self._hashes)

    def append(self, leaf: bytes) -> None:
        """Add one leaf hash; merges one subtree per trailing one-bit of the old size."""
        self._push(leaf, 0)

    def extend(self, leaves: Iterable[bytes]) -> None:
        """Add leaf hashes in order. Many at once are added as perfect subtrees, each hashed level by level,
        which builds the same frontier as appending them one by one (and costs fewer Python steps)."""
        leaves = leaves if isinstance(leaves, list) else list(leaves)
        done, left = 0, len(leaves)
        while left:
            aligned = (self._size & -self._size) or left  # the largest block that keeps subtrees aligned
            block = min(aligned, 1 << (left.bit_length() - 1))
            level = leaves[done : done + block]
            height = 0
            while len(level) > 1:
                level = [_sha256(b"\x01" + a + b).digest() for a, b in zip(level[::2], level[1::2])]
                height += 1
            self._push(level[0], height)
            done, left = done + block, left - block

    def _push(self, node: bytes, height: int) -> None:
        """Add the root of a perfect subtree of 2**height leaves at a size that is a multiple of 2**height (a leaf
        is one of height 0): merges one subtree per one-bit of the size from bit ``height`` up."""
        hashes = self._hashes
        hashes.append(node)
        carry = self._size >> height
        while carry & 1:
            right = hashes.pop()
            hashes[-1] = _sha256(b"\x01" + hashes[-1] + right).digest()
            carry >>= 1
        self._size += 1 << height

    def root(self) -> bytes:
        """MTH of all leaves so far: fold the subtree roots from the smallest (rightmost) up."""
        if not self._hashes:
            return EMPTY_ROOT
        acc = self._hashes[-1]
        for left in reversed(self._hashes[:-1]):
            acc = node_hash(left, acc)
        return acc

    def copy(self) -> CompactRange:
        return CompactRange(self._size, self._hashes)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CompactRange) and (self._size, self._hashes) == (other._size, other._hashes)

    def __repr__(self) -> str:
        return f"CompactRange(size={self._size}, root={self.root().hex()[:16]}…)"
