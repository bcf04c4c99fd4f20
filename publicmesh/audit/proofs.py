"""Proofs about the exchange record log (RFC 9162): its root at a size, inclusion and consistency proofs, computed
from the stored leaves, with the large perfect subtrees kept once computed."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, Engine, select

from publicmesh.audit import merkle
from publicmesh.audit.merkle import CompactRange
from publicmesh.audit.schema import HEAD_ID, frontier, leaves

_LEAF_PAGE = 65_536


class LogProofs:
    """Answers proofs from the log's store (read only: any process may)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.subtrees = PerfectSubtrees()

    def root(self, tree_size: int | None = None) -> bytes:
        """The tree root at ``tree_size`` (default: now), recomputed from the stored leaves."""
        with self.engine.connect() as conn:
            size = self._proof_size(conn, tree_size)
            return self._subtree_root(conn, 0, size)

    def inclusion_proof(self, position: int, tree_size: int | None = None) -> list[bytes]:
        """RFC 9162 inclusion proof of ``position`` in the tree of ``tree_size`` leaves (default: now)."""
        with self.engine.connect() as conn:
            size = self._proof_size(conn, tree_size)
            return merkle.inclusion_path(position, size, lambda a, b: self._subtree_root(conn, a, b))

    def inclusion_proofs(
        self, positions: Sequence[int], tree_size: int | None = None
    ) -> tuple[int, dict[int, list[bytes]]]:
        """Proofs of several positions against one tree size, sharing the subtrees they have in common."""
        with self.engine.connect() as conn:
            size = self._proof_size(conn, tree_size)
            memo: dict[tuple[int, int], bytes] = {}

            def subtree(a: int, b: int) -> bytes:
                if (a, b) not in memo:
                    memo[(a, b)] = self._subtree_root(conn, a, b)
                return memo[(a, b)]

            return size, {p: merkle.inclusion_path(p, size, subtree) for p in positions if p < size}

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """RFC 9162 consistency proof from ``old_size`` to ``new_size`` (default: now). The large perfect subtrees
        computed once are kept (self.subtrees): proofs asked for every second would otherwise read every leaf."""
        with self.engine.connect() as conn:
            size = self._proof_size(conn, new_size)
            return merkle.consistency_path(
                old_size, size, lambda a, b: self.subtrees.root(a, b, lambda x, y: self._subtree_root(conn, x, y))
            )

    def _proof_size(self, conn: Connection, tree_size: int | None) -> int:
        current = conn.execute(select(frontier.c.tree_size).where(frontier.c.id == HEAD_ID)).scalar() or 0
        if tree_size is None:
            return current
        if not 0 <= tree_size <= current:
            raise ValueError(f"tree size {tree_size} is outside the log (size {current})")
        return tree_size

    def _subtree_root(self, conn: Connection, start: int, end: int) -> bytes:
        # Streams the leaves in pages: a proof touches each leaf at most once, in O(log n) memory.
        tree = CompactRange()
        for page_start in range(start, end, _LEAF_PAGE):
            page_end = min(page_start + _LEAF_PAGE, end)
            hashes = (
                conn.execute(
                    select(leaves.c.leaf_hash)
                    .where((leaves.c.position >= page_start) & (leaves.c.position < page_end))
                    .order_by(leaves.c.position)
                )
                .scalars()
                .all()
            )
            if len(hashes) != page_end - page_start:
                raise LookupError(f"leaves missing in positions {page_start}..{page_end - 1}; run verify()")
            tree.extend(bytes(h) for h in hashes)
        return tree.root()


class PerfectSubtrees:
    """Roots of the log's perfect subtrees of at least ``minimum`` leaves, kept once computed: the log is append-only,
    so such a root never changes (a tampered store is what ``verify`` finds, not what proofs are for)."""

    def __init__(self, minimum: int = 1024, most: int = 200_000) -> None:
        self.minimum, self.most = minimum, most
        self._roots: dict[tuple[int, int], bytes] = {}

    def root(self, start: int, end: int, compute: merkle.SubtreeRoot) -> bytes:
        """MTH of leaves [start, end) (a subtree as RFC 9162's recursion makes them), from kept perfect parts."""
        size = end - start
        if size & (size - 1) == 0:  # a perfect subtree (or one leaf)
            if size < self.minimum:
                return compute(start, end)
            found = self._roots.get((start, size))
            if found is None:
                found = compute(start, end)
                if len(self._roots) >= self.most:
                    self._roots.clear()
                self._roots[(start, size)] = found
            return found
        k = merkle.split_point(size)
        return merkle.node_hash(self.root(start, start + k, compute), self.root(start + k, end, compute))
