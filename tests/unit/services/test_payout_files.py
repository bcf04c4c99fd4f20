"""Payout files a crash left half done: a file recorded in the store takes its name, an unrecorded one (nothing
in it was marked paid) is removed, so no transfer file exists that the store does not know."""

from __future__ import annotations

from sqlalchemy import insert

from publicmesh.services.payout import settle_files
from publicmesh.services.store import metadata, payout_files, utc_now


def test_a_recorded_file_is_named_and_an_unrecorded_one_removed(engine, tmp_path):
    out = tmp_path / "payouts"
    out.mkdir()
    metadata.create_all(engine)
    recorded, lost = "svc-012084-20261210-1.zengin", "svc-012084-20261210-2.zengin"
    with engine.begin() as conn:
        conn.execute(
            insert(payout_files).values(
                name=recorded,
                tenant="012084",
                service_id="svc",
                transfer_date="2026-12-10",
                count=1,
                total_yen=1000,
                created_at=utc_now(),
            )
        )
    (out / f"{recorded}.part").write_bytes(b"recorded")
    (out / f"{lost}.part").write_bytes(b"lost")
    (out / "other.zengin").write_bytes(b"kept as it is")

    assert settle_files(engine, out) == [recorded]
    assert sorted(p.name for p in out.iterdir()) == ["other.zengin", recorded]
    assert (out / recorded).read_bytes() == b"recorded"
    assert settle_files(engine, out) == []  # a second run finds nothing to do
