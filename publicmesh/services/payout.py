"""Payouts: approved applications become Zengin 総合振込 transfer files, one per paying municipality and day.

The receiving accounts (公金受取口座) are asked of the portal through the hub, for these people only; a person
without one gets a notice asking for it and is paid in a later run. Marking the applications paid, recording the
file, and writing each person's payout notice and the status event for their portal happen in one transaction
after the file is written, so a crash never pays twice: the file is written as ``NAME.part`` and takes its name
only once that transaction is committed; a ``.part`` file a crash left is named if its file was recorded and
removed if not (its applications are still approved, and the next file pays them).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
from sqlalchemy import Engine, insert, select, update

from publicmesh.accounts import bank_info, branch_info
from publicmesh.applications.lifecycle import Action, move
from publicmesh.payouts import zengin
from publicmesh.population.places import municipality
from publicmesh.protocol.client import MeshClient
from publicmesh.protocol.members import PORTAL
from publicmesh.services import applications as apps
from publicmesh.services import decisions
from publicmesh.services.store import applications, history, payout_files, utc_now
from publicmesh.storage.private import private_dir, write_private

ACCOUNT_ATTRIBUTES = ["bank_code", "branch_code", "account_type", "account_number", "holder_kana"]


def remitter_for(code: str) -> zengin.Remitter:
    """The municipality's designated bank account (指定金融機関). Demo values: a real bank and branch code, the
    municipality's code as the client code, its name in half-width kana."""
    place = municipality(code)
    return zengin.Remitter(
        client_code=f"{int(code):010d}",
        name_kana=place.name_kana,
        bank_code="0005",
        bank_name_kana=_bank_kana("0005"),
        branch_code="001",
        branch_name_kana=_branch_kana("0005", "001"),
        account_type=1,
        account_number=f"{int(code) % 10_000_000:07d}",
    )


def pay_approved(
    engine: Engine, client: MeshClient, doc: dict, out_dir: Path, *, transfer_date: dt.date | None = None, progress=None
) -> dict:
    """Files for every approved, unpaid application of the service; returns counts and totals per municipality."""
    transfer_date = transfer_date or (dt.date.today() + dt.timedelta(days=3))
    payable_from, paid_status = move(Action.PAY)  # approved → paid, as the lifecycle has it
    private_dir(out_dir)  # bank accounts and amounts
    settle_files(engine, out_dir)
    with engine.connect() as conn:
        approved = pl.DataFrame(
            [
                dict(r)
                for r in conn.execute(
                    select(
                        applications.c.id, applications.c.subject, applications.c.tenant, applications.c.amount_yen
                    ).where(applications.c.service_id == doc["id"], applications.c.status.in_(payable_from))
                ).mappings()
            ],
            schema={"id": pl.Utf8, "subject": pl.Utf8, "tenant": pl.Utf8, "amount_yen": pl.Int64},
        )
    result = {"files": [], "paid": 0, "paid_yen": 0, "without_account": 0}
    purpose = f"specified-public-benefit:{doc['id']}"
    for code, group in approved.group_by("tenant", maintain_order=True):
        code = code[0] if isinstance(code, tuple) else code
        table = client.bulk(str(PORTAL), "public-fund-account", group["subject"].to_list(), ACCOUNT_ATTRIBUTES, purpose)
        found = pl.from_arrow(table).select("subject", *ACCOUNT_ATTRIBUTES)
        payable = group.join(found, on="subject", how="inner").sort("id")
        missing = group.join(found, on="subject", how="anti")
        result["without_account"] += missing.height
        if missing.height and "no_account" in doc.get("notices", {}):
            _ask_for_account(client, doc, missing)
        if payable.height == 0:
            continue
        transfers = tuple(
            zengin.Transfer(
                bank_code=r["bank_code"],
                bank_name_kana=_bank_kana(r["bank_code"]),
                branch_code=r["branch_code"],
                branch_name_kana=_branch_kana(r["bank_code"], r["branch_code"]),
                account_type=int(r["account_type"]),
                account_number=r["account_number"],
                holder_kana=r["holder_kana"],
                amount_yen=int(r["amount_yen"]),
                customer_code=r["id"],
            )
            for r in payable.iter_rows(named=True)
        )
        file = zengin.TransferFile(remitter_for(code), transfer_date, transfers)
        name = f"{doc['id']}-{code}-{transfer_date:%Y%m%d}-{utc_now():%H%M%S%f}.zengin"
        path = out_dir / name
        data = zengin.write(file)
        write_private(_unconfirmed(path), data)  # the file is whole before anything is marked paid
        now = utc_now()
        ids = payable["id"].to_list()
        with engine.begin() as conn:
            conn.execute(
                insert(payout_files).values(
                    name=name,
                    tenant=code,
                    service_id=doc["id"],
                    transfer_date=transfer_date.isoformat(),
                    count=len(ids),
                    total_yen=file.total_yen,
                    created_at=now,
                )
            )
            marked: list[str] = []
            for start in range(0, len(ids), 5000):
                part = ids[start : start + 5000]
                done = (
                    conn.execute(
                        update(applications)
                        .where(applications.c.id.in_(part), applications.c.status.in_(payable_from))
                        .values(status=paid_status, paid_at=now, payout_file=name)
                        .returning(applications.c.id)
                    )
                    .scalars()
                    .all()
                )
                if done:
                    conn.execute(
                        insert(history),
                        [
                            {"application_id": i, "status": paid_status, "actor": "payout", "reason": name, "at": now}
                            for i in done
                        ],
                    )
                marked += done
            paid = [
                {**r, "service_id": doc["id"]}
                for r in payable.filter(pl.col("id").is_in(marked))
                .select("id", "subject", "amount_yen")
                .iter_rows(named=True)
            ]
            decisions.record_paid(conn, paid, transfer_date, doc)
            apps.announce_many(conn, paid, paid_status)  # the portal shows it live
        _unconfirmed(path).rename(path)
        result["files"].append({"name": name, "tenant": code, "count": file.total_count, "total_yen": file.total_yen})
        result["paid"] += file.total_count
        result["paid_yen"] += file.total_yen
    return result


def _unconfirmed(path: Path) -> Path:
    return path.with_name(path.name + ".part")


def settle_files(engine: Engine, out_dir: Path) -> list[str]:
    """What a crash between writing a file and recording it left: a recorded file is named, another removed
    (nothing in it was marked paid). Returns the names kept."""
    kept = []
    for part in sorted(out_dir.glob("*.zengin.part")):
        name = part.name.removesuffix(".part")
        with engine.connect() as conn:
            recorded = conn.execute(select(payout_files.c.name).where(payout_files.c.name == name)).first()
        if recorded is None:
            part.unlink()
        else:
            part.rename(out_dir / name)
            kept.append(name)
    return kept


def _bank_kana(bank_code: str) -> str:
    info = bank_info(bank_code)
    return info.kana_half if info else ""


def _branch_kana(bank_code: str, branch_code: str) -> str:
    info = branch_info(bank_code, branch_code)
    return info.kana_half if info else ""


def _ask_for_account(client: MeshClient, doc: dict, missing: pl.DataFrame) -> None:
    text = doc["notices"]["no_account"]
    notices = [
        {
            "subject": r["subject"],
            "key": f"{doc['id']}:{r['id']}:no-account",
            "title_ja": text["title"]["ja"],
            "title_en": text["title"]["en"],
            "body_ja": text["body"]["ja"].format(amount=f"{r['amount_yen']:,}"),
            "body_en": text["body"]["en"].format(amount=f"{r['amount_yen']:,}"),
            "link": "/settings#h-account",
            "category": "account-request",
        }
        for r in missing.iter_rows(named=True)
    ]
    client.notify(str(PORTAL), f"specified-public-benefit:{doc['id']}", doc["id"], notices)
