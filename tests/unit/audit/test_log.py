"""The audit log on a real store: appends, proofs, restarts, concurrency and tamper detection."""

from __future__ import annotations

import json
import stat
import threading
import time
from dataclasses import replace

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import delete, func, select, update
from timing import budget

from publicmesh.audit import AuditLog, ExchangeRecord, load_or_create_audit_key, verify_store
from publicmesh.audit.merkle import CompactRange, leaf_hash, root, verify_consistency, verify_inclusion
from publicmesh.audit.records import canonical_bytes
from publicmesh.audit.schema import batches, checkpoints, frontier, leaves, records, subject_pages, subjects
from publicmesh.audit.subjects import PAGE, page_root, page_subjects
from publicmesh.audit.subjects import build as subject_tree
from publicmesh.audit.subjects import verify as verify_subjects
from publicmesh.settings import Settings
from publicmesh.storage import engine_for

pytestmark = pytest.mark.storage


@pytest.fixture
def store_name():
    return "audit"


@pytest.fixture
def key():
    return Ed25519PrivateKey.generate()


@pytest.fixture
def log(engine, key):
    return AuditLog(engine, key)


def make_record(i: int, **changes) -> ExchangeRecord:
    fields = dict(
        kind=("query", "bulk-item", "event")[i % 3],
        at=f"2026-11-23T09:{i // 60 % 60:02d}:{i % 60:02d}.{i % 1000:03d}Z",
        consumer="MUNI/012084/child-allowance",
        provider="MUNI/131016/resident-registry",
        dataset="resident-basic",
        attributes=("name", "address", "birth_date"),
        purpose="児童手当の認定",
        legal_basis="番号法別表第八",
        subject=f"ap-{i % 7:04d}",
        request_id=f"req-{i}",
        outcome="ok",
    )
    fields.update(changes)
    return ExchangeRecord(**fields)


def fill(log: AuditLog, n: int, batch: int = 10) -> None:
    for start in range(0, n, batch):
        log.append_many([make_record(i) for i in range(start, min(start + batch, n))])


def stored_leaves(engine) -> list[bytes]:
    with engine.connect() as conn:
        return [bytes(h) for h in conn.execute(select(leaves.c.leaf_hash).order_by(leaves.c.position)).scalars()]


# --- appending and reading --------------------------------------------------------------------------------


def test_append_assigns_consecutive_positions_and_signs_each_size(log, key):
    assert log.size() == 0
    assert log.latest_checkpoint().tree_size == 0
    assert log.append_many([make_record(0), make_record(1)]) == [0, 1]
    assert log.append(make_record(2)) == 2
    assert log.append_many([]) == []
    checkpoint = log.latest_checkpoint()
    assert (log.size(), checkpoint.tree_size) == (3, 3)
    assert checkpoint.verify(key.public_key())
    assert not checkpoint.verify(Ed25519PrivateKey.generate().public_key())
    assert checkpoint.root == root([leaf_hash(canonical_bytes(make_record(i), i)) for i in range(3)])
    assert log.checkpoint(2).tree_size == 2 and log.checkpoint(1) is None
    assert log.get(1) == make_record(1)
    with pytest.raises(KeyError):
        log.get(3)


def test_records_for_subject_newest_first_with_paging(log):
    fill(log, 50)
    mine = [p for p in range(50) if p % 7 == 3]
    first = log.records_for_subject("ap-0003", limit=4)
    assert [p for p, _ in first] == mine[::-1][:4]
    rest = log.records_for_subject("ap-0003", limit=100, before=first[-1][0])
    assert [p for p, _ in rest] == mine[::-1][4:]
    assert all(r.subject == "ap-0003" for _, r in first + rest)
    assert log.records_for_subject("nobody") == []


def test_proofs_verify_against_signed_checkpoints(log):
    fill(log, 37, batch=5)
    old = log.checkpoint(20)
    new = log.latest_checkpoint()
    for position in (0, 19, 20, 36):
        leaf = leaf_hash(canonical_bytes(log.get(position), position))
        assert verify_inclusion(position, 37, leaf, log.inclusion_proof(position), new.root)
    assert verify_inclusion(3, 20, leaf_hash(canonical_bytes(log.get(3), 3)), log.inclusion_proof(3, 20), old.root)
    assert verify_consistency(20, 37, old.root, new.root, log.consistency_proof(20))
    assert log.root(20) == old.root
    with pytest.raises(ValueError):
        log.inclusion_proof(37)
    with pytest.raises(ValueError):
        log.consistency_proof(5, 38)


def test_restart_continues_from_the_stored_frontier(engine, key):
    first = AuditLog(engine, key)
    fill(first, 23)
    again = AuditLog(engine, key)
    assert again.append(make_record(23)) == 23
    assert again.latest_checkpoint().root == root(stored_leaves(engine))
    assert again.verify().ok


def test_read_only_log_cannot_append(engine, key):
    AuditLog(engine, key)
    reader = AuditLog(engine, None)
    with pytest.raises(PermissionError):
        reader.append(make_record(0))
    assert reader.verify(key.public_key()).ok


def test_records_are_validated():
    with pytest.raises(ValueError):
        make_record(0, kind="gossip")
    with pytest.raises(ValueError):
        make_record(0, at="2026-11-23 09:00:00")
    with pytest.raises(TypeError):
        make_record(0, attributes="name")
    assert make_record(0, attributes=["a", "b"]).attributes == ("a", "b")


def test_canonical_bytes_include_position_and_are_deterministic():
    record = make_record(5)
    assert canonical_bytes(record, 5) == canonical_bytes(make_record(5), 5)
    assert canonical_bytes(record, 5) != canonical_bytes(record, 6)
    text = canonical_bytes(record, 5).decode("utf-8")
    assert text.startswith('{"at":') and '"position":5' in text and "児童手当" in text and ": " not in text


def test_concurrent_writers_with_separate_engines_keep_positions_consecutive(engine, key):
    # Two AuditLog objects on two engines behave like two processes: only the database orders them.
    other = engine_for_same_store(engine)
    logs = [AuditLog(engine, key), AuditLog(other, key)]
    got: list[int] = []
    lock = threading.Lock()

    def writer(log: AuditLog, offset: int) -> None:
        for i in range(20):
            positions = log.append_many([make_record(offset + i * 3 + j) for j in range(3)])
            assert positions == list(range(positions[0], positions[0] + 3))
            with lock:
                got.extend(positions)

    threads = [threading.Thread(target=writer, args=(logs[i % 2], 1000 * i)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    other.dispose()
    assert sorted(got) == list(range(240))
    assert logs[0].verify().ok


def engine_for_same_store(engine):
    from sqlalchemy import create_engine

    return create_engine(engine.url, **({"connect_args": {"timeout": 30}} if engine.dialect.name == "sqlite" else {}))


def test_keys_are_created_once_with_private_mode(tmp_path):
    keys_dir = tmp_path / "nested" / "keys"
    key = load_or_create_audit_key(keys_dir)
    path = keys_dir / "audit.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_audit_key(keys_dir).public_key().public_bytes_raw() == key.public_key().public_bytes_raw()


def test_verify_store_uses_the_audit_store_and_key(tmp_path):
    settings = Settings(data_dir=tmp_path, database_url="")  # never the shared PostgreSQL "audit" store
    engine = engine_for("audit", settings)
    fill(AuditLog(engine, load_or_create_audit_key(settings.keys_dir)), 12)
    engine.dispose()
    report = verify_store(settings)
    assert report.ok and report.tree_size == 12


# --- tamper detection -------------------------------------------------------------------------------------


def test_untouched_log_verifies(log):
    fill(log, 95)
    report = log.verify()
    assert report.ok, report.problems
    assert (report.tree_size, report.records_checked, report.first_bad_position) == (95, 95, None)
    assert report.checkpoints_checked == 11  # size 0 and one per batch


def test_updated_purpose_is_reported_at_its_position(log, engine):
    fill(log, 60)
    with engine.begin() as conn:
        conn.execute(update(records).where(records.c.position == 17).values(purpose="marketing"))
    report = log.verify()
    assert not report.ok
    assert [(p.position, p.kind) for p in report.problems] == [(17, "altered")]
    assert report.first_bad_position == 17


def test_deleted_record_is_reported_as_removed(log, engine):
    fill(log, 60)
    with engine.begin() as conn:
        conn.execute(delete(records).where(records.c.position == 42))
    report = log.verify()
    assert [(p.position, p.kind) for p in report.problems] == [(42, "removed")]
    assert "removed record at position 42" in report.problems[0].detail


def test_an_exchange_about_many_subjects_is_one_record_each_of_them_finds_and_proves(log, engine, key):
    template = make_record(1)
    positions = log.append_many(
        [make_record(0), template.for_subjects(["ap-c", "ap-a", "ap-b", "ap-a"]), make_record(2)]
    )
    assert positions == [0, 1, 2]
    assert log.get(1) == replace(template, subject="")
    assert log.records_for_subject("ap-b") == [(1, template.for_subjects(["ap-b"]).record_for("ap-b"))]
    assert log.records_for_subject("ap-0000") == [(0, make_record(0))]
    assert log.records_for_subject("ap-d") == []
    [entry] = log.entries_for_subject("ap-b")
    checkpoint = log.latest_checkpoint()
    _, proofs = log.inclusion_proofs([1], checkpoint.tree_size)
    # Two levels: the subject in the record's subject tree, the record in the log under the signed checkpoint.
    assert verify_subjects("ap-b", entry.batch.proof, entry.batch.root, entry.batch.count)
    assert entry.batch.count == 3
    assert verify_inclusion(1, checkpoint.tree_size, leaf_hash(entry.leaf()), proofs[1], checkpoint.root)
    assert checkpoint.verify(key.public_key())
    assert stored_leaves(engine)[1] == leaf_hash(template.for_subjects(["ap-a", "ap-b", "ap-c"]).canonical_bytes(1))
    assert log.verify().ok


def test_a_whole_municipality_in_one_record_pages_its_subjects_and_pages_back(log, engine):
    import pyarrow as pa

    big = [f"big-{i:06d}" for i in range(3 * PAGE + 5)]
    log.append_many([make_record(0), make_record(1).for_subjects(pa.array(big[::-1])), make_record(2)])
    log.append_many([make_record(3).for_subjects(big[:10])])
    assert [p for p, _ in log.records_for_subject("big-000007")] == [3, 1]
    assert [p for p, _ in log.records_for_subject("big-003000")] == [1]
    assert [p for p, _ in log.records_for_subject("big-000007", limit=1)] == [3]
    assert [p for p, _ in log.records_for_subject("big-000007", before=3)] == [1]
    for subject in ("big-000000", "big-001023", "big-001024", big[-1]):
        [entry] = [e for e in log.entries_for_subject(subject) if e.position == 1]
        assert verify_subjects(subject, entry.batch.proof, entry.batch.root, entry.batch.count)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(subject_pages)).scalar() == 4 + 1
        assert conn.execute(select(func.count()).select_from(subjects)).scalar() == 2  # only the single records
    assert log.verify().ok


def test_a_second_record_about_the_same_subjects_names_the_first_ones_pages(log, engine):
    import pyarrow as pa

    residents = pa.array([f"res-{i:06d}" for i in range(2 * PAGE + 3)])
    tree = subject_tree(residents)  # a municipality's person and household scans: one tree, two records
    first, second = make_record(1).for_subjects(residents), make_record(2).for_subjects(residents)
    first._tree = second._tree = tree
    log.append_many([first])
    log.append_many([make_record(3).for_subjects(["res-000001"]), second])
    with engine.connect() as conn:
        assert conn.execute(select(batches.c.position, batches.c.pages_at).order_by(batches.c.position)).all() == [
            (0, None),
            (1, None),
            (2, 0),
        ]
        assert conn.execute(select(func.count()).select_from(subject_pages)).scalar() == 3 + 1  # stored once
    for subject in ("res-000001", "res-001500", residents[-1].as_py()):
        entries = {e.position: e for e in log.entries_for_subject(subject)}
        assert {0, 2} <= entries.keys()
        for entry in (entries[0], entries[2]):
            assert verify_subjects(subject, entry.batch.proof, entry.batch.root, entry.batch.count)
    assert log.verify().ok
    with engine.begin() as conn:  # named pages that are not its subjects: caught
        conn.execute(update(batches).where(batches.c.position == 2).values(pages_at=1))
    assert [(p.position, p.kind) for p in log.verify().problems] == [(2, "subjects-altered")]


@pytest.mark.parametrize("keeps_trees_over", [None, 100, 10_000])
def test_a_scans_tree_is_kept_for_the_next_record_of_the_same_subjects_over_the_setting(engine, key, keeps_trees_over):
    """AuditLog(keeps_trees_over=Settings.hub_keeps_over): two scans of the same residents (equal arrays, not the
    same one) build one tree and store its pages once; under the threshold, or without it, each stores its own."""
    import pyarrow as pa

    log = AuditLog(engine, key, keeps_trees_over=keeps_trees_over)
    residents = [f"res-{i:06d}" for i in range(PAGE + 3)]
    first = make_record(0).for_subjects(pa.array(residents), recent=True)
    second = make_record(1).for_subjects(pa.array(residents), recent=True)
    log.append_many([first])
    log.append_many([second])
    kept = keeps_trees_over is not None and len(residents) > keeps_trees_over
    assert (second.tree is first.tree) == kept
    with engine.connect() as conn:
        named = conn.execute(select(batches.c.pages_at).order_by(batches.c.position)).scalars().all()
        pages = conn.execute(select(func.count()).select_from(subject_pages)).scalar()
    assert named == ([None, 0] if kept else [None, None]) and pages == (2 if kept else 4)
    assert log.kept_trees is None or len(log.kept_trees) == 0  # taken by the second: let go
    assert log.verify().ok


def test_a_store_made_before_named_pages_gets_the_column(engine, key):
    from publicmesh.audit.schema import upgrade

    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE audit_batches (position BIGINT PRIMARY KEY, subject_count BIGINT NOT NULL, "
            "subject_root BLOB NOT NULL)"
            if engine.dialect.name == "sqlite"
            else "CREATE TABLE audit_batches (position BIGINT PRIMARY KEY, subject_count BIGINT NOT NULL, "
            "subject_root BYTEA NOT NULL)"
        )
    log = AuditLog(engine, key)
    upgrade(engine)  # again: nothing to do
    log.append_many([make_record(0).for_subjects(["old-a", "old-b"])])
    assert [p for p, _ in log.records_for_subject("old-b")] == [0]


def test_a_removed_or_edited_subject_page_is_reported(log, engine):
    big = [f"big-{i:06d}" for i in range(2 * PAGE)]
    log.append_many([make_record(0), make_record(1).for_subjects(big), make_record(2).for_subjects(big[:50])])
    with engine.begin() as conn:  # the person is dropped from a page, and the page's root made to match
        row = conn.execute(select(subject_pages).where(subject_pages.c.position == 1, subject_pages.c.page == 1)).one()
        kept = [s for s in page_subjects(row.subjects) if s != "big-001500"]
        conn.execute(
            update(subject_pages)
            .where(subject_pages.c.position == 1, subject_pages.c.page == 1)
            .values(subjects=json.dumps(kept), page_root=page_root(kept))
        )
        conn.execute(delete(subject_pages).where(subject_pages.c.position == 2))
    assert [p for p, _ in log.records_for_subject("big-001500")] == []
    report = log.verify()
    assert [(p.position, p.kind) for p in report.problems] == [(1, "subjects-altered"), (2, "subjects-altered")]
    assert "1023, not the 1024" in report.problems[0].detail or "2047, not the 2048" in report.problems[0].detail


def test_a_subject_tree_replaced_with_its_root_is_caught_by_the_leaf(log, engine):
    log.append_many([make_record(0), make_record(1).for_subjects(["ap-a", "ap-b"])])
    other = subject_tree(["ap-a", "ap-x"])
    with engine.begin() as conn:
        conn.execute(update(batches).where(batches.c.position == 1).values(subject_root=other.root))
        conn.execute(delete(subject_pages).where(subject_pages.c.position == 1))
        conn.execute(
            subject_pages.insert(),
            [
                {
                    "position": 1,
                    "first_subject": p.first,
                    "page": p.number,
                    "subjects": p.subjects_json.decode(),
                    "page_root": p.root,
                }
                for p in other.pages
            ],
        )
    assert [(p.position, p.kind) for p in log.verify().problems] == [(1, "altered")]


def test_a_deleted_subject_pair_hides_a_record_and_is_reported(log, engine):
    fill(log, 30)
    assert 15 in [p for p, _ in log.records_for_subject("ap-0001")]
    with engine.begin() as conn:
        conn.execute(delete(subjects).where(subjects.c.position == 15))
    assert 15 not in [p for p, _ in log.records_for_subject("ap-0001")]
    assert [(p.position, p.kind) for p in log.verify().problems] == [(15, "subject-unlisted")]


def test_a_forged_pair_never_shows_someone_elses_record(log, engine):
    fill(log, 30)
    with engine.begin() as conn:
        conn.execute(subjects.insert(), {"subject": "ap-0001", "position": 16})  # position 16 is ap-0002's
    assert 16 not in [p for p, _ in log.records_for_subject("ap-0001")]
    assert [(p.position, p.kind) for p in log.verify().problems] == [(16, "subject-stray")]


def test_swapped_records_are_reported_as_reordered(log, engine):
    fill(log, 60)
    columns = [c for c in records.c if c.name != "position"]
    with engine.begin() as conn:
        a, b = (conn.execute(select(*columns).where(records.c.position == p)).mappings().one() for p in (8, 51))
        conn.execute(update(records).where(records.c.position == 8).values(**b))
        conn.execute(update(records).where(records.c.position == 51).values(**a))
    report = log.verify()
    assert sorted((p.position, p.kind) for p in report.problems) == [(8, "reordered"), (51, "reordered")]
    assert "logged at position 51" in next(p.detail for p in report.problems if p.position == 8)
    assert report.first_bad_position == 8


def test_record_and_leaf_rewritten_together_breaks_the_checkpoint(log, engine):
    fill(log, 60, batch=10)
    forged = make_record(33, purpose="marketing")
    with engine.begin() as conn:
        conn.execute(update(records).where(records.c.position == 33).values(purpose="marketing"))
        forged_leaf = leaf_hash(canonical_bytes(forged, 33))
        conn.execute(update(leaves).where(leaves.c.position == 33).values(leaf_hash=forged_leaf))
    report = log.verify()
    mismatch = [p for p in report.problems if p.kind == "checkpoint-mismatch"]
    assert len(mismatch) == 1
    assert mismatch[0].checkpoint_size == 40 and mismatch[0].positions == (30, 39)
    assert "later checkpoints up to size 60" in mismatch[0].detail
    assert not any(p.kind in ("altered", "reordered", "removed") for p in report.problems)
    assert report.first_bad_position == 30


def test_leaf_rewritten_alone_is_reported(log, engine):
    fill(log, 30)
    with engine.begin() as conn:
        conn.execute(update(leaves).where(leaves.c.position == 4).values(leaf_hash=b"\x00" * 32))
    report = log.verify()
    assert (4, "altered") in [(p.position, p.kind) for p in report.problems]
    assert any(p.kind == "checkpoint-mismatch" and p.positions == (0, 9) for p in report.problems)


def test_forged_checkpoint_signature_is_reported(log, engine):
    fill(log, 30)
    with engine.begin() as conn:
        backdated = {"timestamp": "2020-01-01T00:00:00.000Z"}
        conn.execute(update(checkpoints).where(checkpoints.c.tree_size == 20).values(**backdated))
    report = log.verify()
    assert [(p.kind, p.checkpoint_size) for p in report.problems] == [("checkpoint-signature", 20)]


def test_truncated_tail_is_reported(log, engine):
    fill(log, 30)
    tree = CompactRange()
    tree.extend(stored_leaves(engine)[:25])
    with engine.begin() as conn:  # drop the last five entries and rewind the head consistently
        conn.execute(delete(records).where(records.c.position >= 25))
        conn.execute(delete(leaves).where(leaves.c.position >= 25))
        conn.execute(update(frontier).values(tree_size=25, hashes=tree.to_bytes()))
    report = log.verify()
    kinds = {p.kind: p for p in report.problems}
    assert kinds["checkpoint-beyond-end"].positions == (25, 29)
    assert "checkpoint-missing" in kinds  # nothing was signed at size 25


def test_inserted_record_beyond_the_end_is_reported(log, engine):
    fill(log, 10)
    with engine.begin() as conn:
        conn.execute(records.insert(), {**_row(make_record(99)), "position": 10})
    report = log.verify()
    assert [(p.position, p.kind) for p in report.problems] == [(10, "extra-record")]


def _row(record: ExchangeRecord) -> dict:
    from publicmesh.audit.schema import record_row

    return record_row(0, record)


# --- scale ------------------------------------------------------------------------------------------------


def test_hundred_thousand_appends_and_a_full_verify(log, capsys):
    batch = [make_record(i) for i in range(100_000)]
    started = time.perf_counter()
    assert log.append_many(batch)[-1] == 99_999
    appended = time.perf_counter() - started
    started = time.perf_counter()
    report = log.verify()
    verified = time.perf_counter() - started
    assert report.ok and report.records_checked == 100_000
    with capsys.disabled():
        print(f"\n[audit] 100,000 appends: {appended:.2f}s, full verify: {verified:.2f}s ({log.engine.dialect.name})")
    assert appended < budget(10)
