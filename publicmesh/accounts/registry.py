"""Each person's one public-fund receiving account (公金受取口座), with the history of the ones it replaced."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Column, Engine, Index, MetaData, RowMapping, Table, Text, select, text, update
from sqlalchemy.exc import IntegrityError

from publicmesh.accounts.kana import holder_matches, person_holder_kana
from publicmesh.accounts.validation import ACCOUNT_TYPES, AccountError, ValidatedAccount
from publicmesh.settings import Settings
from publicmesh.storage import engine_for, schema_once

STORE = "accounts"
ACTIVE, REPLACED, WITHDRAWN = "active", "replaced", "withdrawn"
_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"  # fixed width UTC: compares correctly as text on every database

metadata = MetaData()
accounts = Table(
    "public_fund_accounts",
    metadata,
    Column("id", Text, primary_key=True),
    Column("person_ref", Text, nullable=False),
    Column("bank_code", Text, nullable=False),
    # Names as they were when registered: banks merge and rename, the codes stay what payouts use.
    Column("bank_name", Text, nullable=False),
    Column("branch_code", Text, nullable=False),
    Column("branch_name", Text, nullable=False),
    Column("account_type", Text, nullable=False),
    Column("account_number", Text, nullable=False),
    Column("holder_kana", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("registered_at", Text, nullable=False),
    Column("ended_at", Text),
    Index("ix_public_fund_accounts_person", "person_ref", "registered_at"),
    # One account per person, even when two registrations race.
    Index(
        "ux_public_fund_accounts_active",
        "person_ref",
        unique=True,
        sqlite_where=text(f"status = '{ACTIVE}'"),
        postgresql_where=text(f"status = '{ACTIVE}'"),
    ),
)


@dataclass(frozen=True, slots=True)
class PublicFundAccount:
    """A person's registered receiving account (or a past one, by its status)."""

    id: str
    person_ref: str
    bank_code: str
    bank_name: str
    branch_code: str
    branch_name: str
    account_type: str
    account_number: str
    holder_kana: str
    status: str
    registered_at: datetime
    ended_at: datetime | None = None

    @property
    def type_code(self) -> str:
        return ACCOUNT_TYPES[self.account_type][0]

    @property
    def type_label(self) -> str:
        return ACCOUNT_TYPES[self.account_type][1]


ensure_schema = schema_once(metadata)


def open_store(settings: Settings | None = None) -> Engine:
    """The accounts store's engine, with its table."""
    return ensure_schema(engine_for(STORE, settings))


def _text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(_FORMAT)


def _time(value: str | None) -> datetime | None:
    return None if value is None else datetime.strptime(value, _FORMAT).replace(tzinfo=UTC)


def _account(row: Mapping[Any, Any]) -> PublicFundAccount:
    """The account in a stored row, or in the row just written (a dict)."""
    values = dict(row)
    values["registered_at"], values["ended_at"] = _time(row["registered_at"]), _time(row["ended_at"])
    return PublicFundAccount(**values)


def _same(current: RowMapping, account: ValidatedAccount, holder: str) -> bool:
    return (
        current["bank_code"],
        current["branch_code"],
        current["account_type"],
        current["account_number"],
        current["holder_kana"],
    ) == (account.bank_code, account.branch_code, account.account_type, account.account_number, holder)


def register_account(
    engine: Engine,
    person_ref: str,
    account: ValidatedAccount,
    family_kana: str,
    given_kana: str,
    *,
    now: datetime | None = None,
) -> PublicFundAccount:
    """Registers the person's account (replacing the previous one) if its holder is the person; AccountError if not."""
    if not holder_matches(account.holder_kana, family_kana, given_kana):
        raise AccountError(
            "holder", "口座名義がご本人の氏名と一致しません", "The account holder name does not match your name"
        )
    ensure_schema(engine)
    holder = person_holder_kana(family_kana, given_kana)  # the bank's form of the name, spaced family/given
    now_text = _text(now or datetime.now(UTC))
    for attempt in range(2):
        try:
            with engine.begin() as conn:
                current = (
                    conn.execute(
                        select(accounts).where(accounts.c.person_ref == person_ref, accounts.c.status == ACTIVE)
                    )
                    .mappings()
                    .first()
                )
                if current is not None and _same(current, account, holder):
                    return _account(current)  # registering the same account again changes nothing
                if current is not None:
                    conn.execute(
                        update(accounts)
                        .where(accounts.c.id == current["id"], accounts.c.status == ACTIVE)
                        .values(status=REPLACED, ended_at=now_text)
                    )
                row = {
                    "id": secrets.token_urlsafe(16),
                    "person_ref": person_ref,
                    "bank_code": account.bank_code,
                    "bank_name": account.bank_name,
                    "branch_code": account.branch_code,
                    "branch_name": account.branch_name,
                    "account_type": account.account_type,
                    "account_number": account.account_number,
                    "holder_kana": holder,
                    "status": ACTIVE,
                    "registered_at": now_text,
                    "ended_at": None,
                }
                conn.execute(accounts.insert(), row)
                return _account(row)
        except IntegrityError:
            if attempt:  # a concurrent registration won twice in a row: let the caller see it
                raise
    raise AssertionError("unreachable")


def account_of(engine: Engine, person_ref: str) -> PublicFundAccount | None:
    """The person's registered account, or None."""
    ensure_schema(engine)
    with engine.connect() as conn:
        row = (
            conn.execute(select(accounts).where(accounts.c.person_ref == person_ref, accounts.c.status == ACTIVE))
            .mappings()
            .first()
        )
    return None if row is None else _account(row)


def accounts_of_many(engine: Engine, person_refs: list[str], chunk: int = 5000) -> dict[str, PublicFundAccount]:
    """The registered accounts of many people at once (for a payout run), keyed by person."""
    ensure_schema(engine)
    found: dict[str, PublicFundAccount] = {}
    with engine.connect() as conn:
        for start in range(0, len(person_refs), chunk):
            part = person_refs[start : start + chunk]
            for row in conn.execute(
                select(accounts).where(accounts.c.person_ref.in_(part), accounts.c.status == ACTIVE)
            ).mappings():
                found[row["person_ref"]] = _account(row)
    return found


def account_history(engine: Engine, person_ref: str) -> list[PublicFundAccount]:
    """Every account the person has registered, oldest first, with its status."""
    ensure_schema(engine)
    with engine.connect() as conn:
        rows = (
            conn.execute(
                select(accounts)
                .where(accounts.c.person_ref == person_ref)
                .order_by(accounts.c.registered_at, accounts.c.id)
            )
            .mappings()
            .all()
        )
    return [_account(row) for row in rows]


def withdraw_account(engine: Engine, person_ref: str, *, now: datetime | None = None) -> bool:
    """Ends the person's registration (登録の抹消); True when there was an account."""
    ensure_schema(engine)
    with engine.begin() as conn:
        return (
            conn.execute(
                update(accounts)
                .where(accounts.c.person_ref == person_ref, accounts.c.status == ACTIVE)
                .values(status=WITHDRAWN, ended_at=_text(now or datetime.now(UTC)))
            ).rowcount
            > 0
        )


def masked(account: ValidatedAccount | PublicFundAccount) -> str:
    """The account as screens show it, number hidden but its last 3 digits: みずほ銀行 本店 普通 ****567."""
    return f"{account.bank_name} {account.branch_name} {account.type_label} ****{account.account_number[-3:]}"
