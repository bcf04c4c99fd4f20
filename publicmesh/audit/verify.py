"""Whole-log verification, streamed in position windows so it runs in constant memory on any log size."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Connection, Engine, func, or_, select

from publicmesh.audit.checkpoint import Checkpoint
from publicmesh.audit.merkle import CompactRange, leaf_hash
from publicmesh.audit.merkle import root as merkle_root
from publicmesh.audit.records import ExchangeRecord, batch_canonical_bytes, canonical_bytes
from publicmesh.audit.schema import (
    HEAD_ID,
    batches,
    checkpoints,
    frontier,
    leaves,
    records,
    row_record,
    subject_pages,
    subjects,
)
from publicmesh.audit.subjects import PAGE, page_root, page_subjects

WINDOW = 20_000
MAX_PROBLEMS = 1_000
# Mismatching records are cross-checked pairwise to tell a move from an edit; bounded so that a
# wholesale rewrite cannot make verification quadratic.
CROSS_CHECK_LIMIT = 256


@dataclass(frozen=True)
class Problem:
    """One finding: a position when it is known, otherwise the inclusive range it lies in."""

    position: int | None
    kind: str
    detail: str
    positions: tuple[int, int] | None = None
    checkpoint_size: int | None = None

    @property
    def earliest(self) -> int | None:
        if self.position is not None:
            return self.position
        return self.positions[0] if self.positions else None


@dataclass
class VerificationReport:
    """The outcome of checking every record, leaf, checkpoint and the frontier."""

    tree_size: int
    problems: list[Problem] = field(default_factory=list)
    records_checked: int = 0
    checkpoints_checked: int = 0
    problems_left_out: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first_bad_position(self) -> int | None:
        found = [p.earliest for p in self.problems if p.earliest is not None]
        return min(found) if found else None

    def positions(self, kind: str | None = None) -> list[int]:
        """Positions reported, optionally of one kind."""
        return [p.position for p in self.problems if p.position is not None and kind in (None, p.kind)]


def verify_log(
    engine: Engine,
    public_key: Ed25519PublicKey,
    log_id: str,
    window: int = WINDOW,
    witnessed: Sequence[Checkpoint] = (),
) -> VerificationReport:
    """Check the whole log against its leaves, its signed checkpoints and its frontier, and against the checkpoints
    witnesses cosigned (``witnessed``, read from the witnesses, not from the log's store): the log must still hold
    each, or it was cut back or rewritten."""
    with engine.connect() as conn:
        return _Verifier(conn, public_key, log_id, window, witnessed).run()


class _Verifier:
    def __init__(
        self,
        conn: Connection,
        public_key: Ed25519PublicKey,
        log_id: str,
        window: int,
        witnessed: Sequence[Checkpoint] = (),
    ) -> None:
        self.conn, self.public_key, self.log_id, self.window = conn, public_key, log_id, window
        self.witnessed: dict[int, list[Checkpoint]] = {}
        for checkpoint in witnessed:
            self.witnessed.setdefault(checkpoint.tree_size, []).append(checkpoint)
        self.report = VerificationReport(tree_size=0)
        self.tree = CompactRange()
        self.tree_lost_at: int | None = None  # a position whose record and leaf are both gone
        self.unrecomputable = 0
        self.last_good = 0  # size of the last signed checkpoint the records reproduce
        self.mismatch: list[int] | None = None  # [first size, last size, count] of a run of bad checkpoints
        self.latest_checkpoint: int | None = None
        self.suspects: list[tuple[int, ExchangeRecord, bytes]] = []
        self.homes: list[tuple[int, bytes]] = []  # (position, stored leaf) where a moved record may belong
        self.batch_heads: dict = {}  # audit_batches rows of the window being checked

    def add(self, problem: Problem) -> None:
        if len(self.report.problems) < MAX_PROBLEMS:
            self.report.problems.append(problem)
        else:
            self.report.problems_left_out += 1

    def run(self) -> VerificationReport:
        head = self.conn.execute(select(frontier).where(frontier.c.id == HEAD_ID)).first()
        size = head.tree_size if head is not None else 0
        self.report.tree_size = size
        if head is None:
            self.add(Problem(None, "head-missing", "the audit_frontier head row is missing"))
        pending = self._checkpoints(size)
        upcoming = next(pending, None)
        while upcoming is not None and upcoming.tree_size == 0:
            self._check_checkpoint(upcoming)
            upcoming = next(pending, None)
        self._check_witnessed(0)
        for start in range(0, size, self.window):
            end = min(start + self.window, size)
            window = (records.c.position >= start) & (records.c.position < end)
            rows = {r["position"]: r for r in self.conn.execute(select(records).where(window)).mappings()}
            in_batches = (batches.c.position >= start) & (batches.c.position < end)
            self.batch_heads = {r.position: r for r in self.conn.execute(select(batches).where(in_batches))}
            in_leaves = (leaves.c.position >= start) & (leaves.c.position < end)
            stored = dict(self.conn.execute(select(leaves.c.position, leaves.c.leaf_hash).where(in_leaves)).all())
            for position in range(start, end):
                self._check_position(position, rows.get(position), stored.get(position))
                while upcoming is not None and upcoming.tree_size == position + 1:
                    self._check_checkpoint(upcoming)
                    upcoming = next(pending, None)
                if position + 1 in self.witnessed:
                    self._check_witnessed(position + 1)
        self._end_mismatch_run()
        self._check_cut_back(size)
        self._check_coverage(size)
        if head is not None:
            self._check_frontier(head)
        self._classify_suspects()
        self._check_beyond_end()
        self._check_subject_pairs()
        self._check_subject_trees()
        self.report.problems.sort(key=lambda p: (p.earliest is None, p.earliest or 0, p.kind))
        return self.report

    def _checkpoints(self, up_to: int) -> Iterator[Checkpoint]:
        after = -1
        while True:
            page = self.conn.execute(
                select(checkpoints)
                .where((checkpoints.c.tree_size > after) & (checkpoints.c.tree_size <= up_to))
                .order_by(checkpoints.c.tree_size)
                .limit(1000)
            ).all()
            for row in page:
                yield Checkpoint(self.log_id, row.tree_size, bytes(row.root_hash), row.timestamp, bytes(row.signature))
            if len(page) < 1000:
                return
            after = page[-1].tree_size

    def _check_position(self, position: int, row, stored: bytes | None) -> None:
        computed = record = None
        if row is None:
            self.add(Problem(position, "removed", f"removed record at position {position}"))
        else:
            self.report.records_checked += 1
            try:
                record = row_record(row)
                head = self.batch_heads.get(position)
                computed = leaf_hash(
                    canonical_bytes(record, position)
                    if head is None
                    else batch_canonical_bytes(record, position, head.subject_count, bytes(head.subject_root))
                )
            except (ValueError, TypeError, KeyError) as exc:
                self.add(Problem(position, "altered", f"altered record at position {position}: unreadable ({exc})"))
        if stored is None:
            self.add(Problem(position, "leaf-missing", f"leaf hash of position {position} is missing"))
        else:
            stored = bytes(stored)
            if record is not None and computed is not None and computed != stored:
                self._suspect(position, record, stored)
            elif row is None and len(self.homes) < CROSS_CHECK_LIMIT:
                self.homes.append((position, stored))
        # The stored leaf is what the checkpoints signed; feeding it keeps one edited record from
        # making every later checkpoint disagree, while leaf edits still surface at the next checkpoint.
        feed = stored if stored is not None else computed
        if self.tree_lost_at is None:
            if feed is None:
                self.tree_lost_at = position
            else:
                self.tree.append(feed)

    def _suspect(self, position: int, record: ExchangeRecord, stored: bytes) -> None:
        if len(self.suspects) < CROSS_CHECK_LIMIT:
            self.suspects.append((position, record, stored))
            self.homes.append((position, stored))
        else:
            detail = f"altered record at position {position}: it does not hash to its leaf"
            self.add(Problem(position, "altered", detail))

    def _check_checkpoint(self, checkpoint: Checkpoint) -> None:
        self.report.checkpoints_checked += 1
        self.latest_checkpoint = checkpoint.tree_size
        if not checkpoint.verify(self.public_key):
            # A checkpoint without a valid signature proves nothing about the records; report it and move on.
            self.add(
                Problem(
                    None,
                    "checkpoint-signature",
                    f"checkpoint at size {checkpoint.tree_size} has an "
                    "invalid signature (checkpoint altered or forged)",
                    checkpoint_size=checkpoint.tree_size,
                )
            )
            return
        if self.tree_lost_at is not None:
            self.unrecomputable += 1
            return
        if self.tree.root() == checkpoint.root:
            self._end_mismatch_run()
            self.last_good = checkpoint.tree_size
        elif self.mismatch is None:
            self.mismatch = [checkpoint.tree_size, checkpoint.tree_size, 1]
        else:
            self.mismatch[1] = checkpoint.tree_size
            self.mismatch[2] += 1

    def _check_witnessed(self, size: int) -> None:
        """The tree of the first ``size`` leaves must have the root a witness cosigned at that size."""
        for checkpoint in self.witnessed.get(size, ()):
            if checkpoint.log_id != self.log_id or not checkpoint.verify(self.public_key):
                detail = f"the checkpoint a witness cosigned at size {size} is not signed by this log's key"
                self.add(Problem(None, "witness-unverifiable", detail, checkpoint_size=size))
            elif self.tree_lost_at is not None:
                detail = f"the checkpoint a witness cosigned at size {size} cannot be recomputed (records lost)"
                self.add(Problem(None, "witness-unverifiable", detail, checkpoint_size=size))
            elif self.tree.root() != checkpoint.root:
                detail = (
                    f"the log's first {size} entries do not hash to the root a witness cosigned at size {size}: "
                    "the log was rewritten after it was witnessed"
                )
                self.add(Problem(None, "witness-fork", detail, (0, size - 1) if size else None, size))

    def _check_cut_back(self, size: int) -> None:
        for witnessed_size in sorted(self.witnessed):
            if witnessed_size > size:
                detail = (
                    f"the log holds {size} entries but a witness cosigned a checkpoint at size {witnessed_size}: "
                    f"the log was cut back (positions {size}..{witnessed_size - 1} are gone)"
                )
                self.add(Problem(None, "cut-back", detail, (size, witnessed_size - 1), witnessed_size))

    def _end_mismatch_run(self) -> None:
        if self.mismatch is None:
            return
        first, last, count = self.mismatch
        self.mismatch = None
        detail = (
            f"signed checkpoint at size {first} does not match the recomputed tree: an entry in positions "
            f"{self.last_good}..{first - 1} was altered together with its leaf hash"
        )
        if count > 1:
            later = "1 later checkpoint" if count == 2 else f"{count - 1} later checkpoints"
            detail += f"; {later} up to size {last} disagree as a consequence"
        self.add(Problem(None, "checkpoint-mismatch", detail, (self.last_good, first - 1), first))

    def _check_coverage(self, size: int) -> None:
        if self.tree_lost_at is not None and self.unrecomputable:
            self.add(
                Problem(
                    None,
                    "checkpoints-unverifiable",
                    f"{self.unrecomputable} checkpoint(s) after position "
                    f"{self.tree_lost_at} cannot be recomputed: its record and leaf are both gone",
                    (self.tree_lost_at, size - 1),
                )
            )
        if size and self.latest_checkpoint != size:
            since = self.latest_checkpoint or 0
            self.add(
                Problem(
                    None,
                    "checkpoint-missing",
                    f"no signed checkpoint covers positions {since}..{size - 1} "
                    f"(head size {size}, latest checkpoint {self.latest_checkpoint})",
                    (since, size - 1),
                )
            )

    def _check_frontier(self, head) -> None:
        if self.tree_lost_at is not None:
            return
        try:
            stored = CompactRange.from_bytes(head.tree_size, bytes(head.hashes))
        except ValueError as exc:
            self.add(Problem(None, "frontier-mismatch", f"stored frontier is malformed: {exc}"))
            return
        if stored != self.tree:
            self.add(
                Problem(
                    None, "frontier-mismatch", f"stored frontier at size {head.tree_size} does not match the leaves"
                )
            )

    def _classify_suspects(self) -> None:
        for position, record, _ in self.suspects:
            home = next(
                (
                    other
                    for other, leaf in self.homes
                    if other != position and leaf_hash(canonical_bytes(record, other)) == leaf
                ),
                None,
            )
            if home is None:
                self.add(
                    Problem(
                        position,
                        "altered",
                        f"altered record at position {position}: it does not hash to its leaf (record or leaf changed)",
                    )
                )
            else:
                self.add(
                    Problem(
                        position,
                        "reordered",
                        f"reordered/altered at position {position}: it holds the record logged at position {home}",
                    )
                )

    def _check_subject_pairs(self) -> None:
        """Every record has its (subject, position) pair, and every pair its record: a deleted pair would hide
        a record from the person's own view of who read their data. Positions already reported (an edited,
        moved or inserted record) are not reported again for their pairs."""
        reported = {p.position for p in self.report.problems if p.position is not None}
        pair = (subjects.c.subject == records.c.subject) & (subjects.c.position == records.c.position)
        unlisted = select(records.c.position).where(
            ~select(subjects.c.position).where(pair).exists(), ~records.c.position.in_(select(batches.c.position))
        )
        stray = (
            select(subjects.c.position)
            .join(records, records.c.position == subjects.c.position)
            .where(records.c.subject != subjects.c.subject)
        )  # a removed record is reported as removed
        for query, kind, what in (
            (unlisted, "subject-unlisted", "is missing from audit_subjects: the person would not see it"),
            (stray, "subject-stray", "in audit_subjects names a subject its record does not have"),
        ):
            for (position,) in self.conn.execute(query.order_by(query.selected_columns[0]).limit(100)):
                if position not in reported:
                    self.add(
                        Problem(
                            position,
                            kind,
                            f"the record at position {position} {what}"
                            if kind == "subject-unlisted"
                            else f"the pair at position {position} {what}",
                        )
                    )

    def _check_subject_trees(self) -> None:
        """Every exchange about many subjects: its pages are its subjects, sorted, unique and whole, and their tree
        has the root and count its leaf committed to. A page removed, added or edited hides or adds a person."""
        reported = {p.position for p in self.report.problems if p.position is not None}
        heads = self.conn.execute(select(batches).order_by(batches.c.position))
        for head in heads:
            if head.position in reported:
                continue
            problem = self._subject_tree_problem(head)
            if problem:
                self.add(
                    Problem(
                        head.position,
                        "subjects-altered",
                        f"the subjects of the record at position {head.position} {problem}",
                    )
                )

    def _subject_tree_problem(self, head) -> str | None:
        holder = head.position if head.pages_at is None else head.pages_at
        if holder > head.position:  # pages named must be an earlier record's, whose own tree is checked too
            return f"name the pages of a later record ({holder})"
        pages = self.conn.execute(
            select(subject_pages).where(subject_pages.c.position == holder).order_by(subject_pages.c.first_subject)
        ).all()
        roots, count, last = [], 0, None
        for number, page in enumerate(pages):
            try:
                listed = page_subjects(page.subjects)
            except ValueError:
                return f"have an unreadable page {page.page}"
            if page.page != number or not listed or listed[0] != page.first_subject:
                return f"have a page out of place (page {page.page})"
            if (last is not None and listed[0] <= last) or any(a >= b for a, b in zip(listed, listed[1:])):
                return f"are not sorted and unique in page {page.page}"
            if len(listed) != PAGE and number != len(pages) - 1:
                return f"have a page {page.page} of {len(listed)} subjects (a page holds {PAGE})"
            root = page_root(listed)
            if root != bytes(page.page_root):
                return f"do not hash to the stored root of page {page.page}"
            roots.append(root)
            count, last = count + len(listed), listed[-1]
        if count != head.subject_count:
            return f"are {count}, not the {head.subject_count} the record names"
        if merkle_root(roots) != bytes(head.subject_root):
            return "do not hash to the subject root the record names"
        return None

    def _check_beyond_end(self) -> None:
        # Re-read the head: appends made while verifying are legitimate, anything past them is not.
        size = self.conn.execute(select(frontier.c.tree_size).where(frontier.c.id == HEAD_ID)).scalar() or 0
        for table, kind in (
            (records, "extra-record"),
            (leaves, "extra-leaf"),
            (batches, "extra-record"),
            (subject_pages, "extra-record"),
        ):
            outside = or_(table.c.position < 0, table.c.position >= size)
            count = self.conn.execute(select(func.count()).select_from(table).where(outside)).scalar_one()
            found = self.conn.execute(select(table.c.position).where(outside).order_by(table.c.position).limit(100))
            for (position,) in found:
                self.add(
                    Problem(
                        position,
                        kind,
                        f"{table.name} has an entry at position {position} outside the log (size {size}): inserted",
                    )
                )
            if count > 100:
                self.add(Problem(None, kind, f"{count - 100} more {table.name} entries outside the log"))
        beyond = self.conn.execute(
            select(checkpoints.c.tree_size)
            .where(checkpoints.c.tree_size > size)
            .order_by(checkpoints.c.tree_size)
            .limit(100)
        )
        for (tree_size,) in beyond:
            self.add(
                Problem(
                    None,
                    "checkpoint-beyond-end",
                    f"a checkpoint commits to size {tree_size} but the log holds {size} entries: truncated",
                    (size, tree_size - 1),
                    tree_size,
                )
            )
