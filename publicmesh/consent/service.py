"""Giving, amending, revoking and checking consents, and recording prior intents, for the portal and the hub."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime, timedelta

import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Connection, Engine, select, update
from sqlalchemy.exc import IntegrityError

from publicmesh.consent.model import (
    ACTIVE,
    ALL_SERVICES,
    EXPIRED,
    PRIOR_INTENT_KINDS,
    REVOKED,
    SUPERSEDED,
    Consent,
    PriorIntent,
    Purpose,
    Signer,
    StaleConsent,
    Verifier,
    check_datasets,
    check_person_ref,
    check_recipient,
    check_scope,
    to_text,
    utc_now,
)
from publicmesh.consent.schema import (
    consent_row,
    consents,
    ensure_schema,
    intent_row,
    prior_intents,
    row_consent,
    row_intent,
)

DEFAULT_VALIDITY = timedelta(days=365)  # consents end by themselves unless the person asks for another term


def _new_id() -> str:
    return secrets.token_urlsafe(16)  # unguessable: recipients quote it, and it must not enumerate others'


def _latest(conn: Connection, table, record_id: str):
    return (
        conn.execute(select(table).where(table.c.id == record_id).order_by(table.c.version.desc()).limit(1))
        .mappings()
        .first()
    )


def give_consent(
    engine: Engine,
    person_ref: str,
    recipient: str,
    datasets: Iterable[str],
    purpose: Purpose,
    *,
    sign: Signer,
    valid_from: datetime | None = None,
    valid_until: datetime | None = None,
    now: datetime | None = None,
) -> Consent:
    """Records the person's signed consent that ``recipient`` may receive ``datasets`` for ``purpose``."""
    ensure_schema(engine)
    now = now or utc_now()
    valid_from = valid_from or now
    consent = Consent(
        id=_new_id(),
        version=1,
        person_ref=check_person_ref(person_ref),
        recipient=check_recipient(recipient),
        datasets=check_datasets(datasets),
        purpose=purpose,
        valid_from=valid_from,
        valid_until=valid_until or valid_from + DEFAULT_VALIDITY,
        status=ACTIVE,
        signature=b"",
        created_at=now,
    )
    if consent.valid_until <= consent.valid_from:
        raise ValueError("valid_until must be after valid_from")
    consent = replace(consent, signature=sign(consent.content()))
    with engine.begin() as conn:
        conn.execute(consents.insert(), consent_row(consent))
    return consent


def amend_consent(
    engine: Engine,
    consent_id: str,
    person_ref: str,
    *,
    sign: Signer,
    datasets: Iterable[str] | None = None,
    purpose: Purpose | None = None,
    valid_from: datetime | None = None,
    valid_until: datetime | None = None,
    now: datetime | None = None,
) -> Consent:
    """A new signed version of the consent; the old one is kept, marked superseded. Same id, same recipient."""
    ensure_schema(engine)
    now = now or utc_now()
    current = _own_current(engine, consent_id, person_ref, now)
    if current.status != ACTIVE:
        raise ValueError(f"only an active consent can be amended (this one is {current.status})")
    # The recipient is not amendable: another recipient is another consent the person must see as such.
    amended = replace(
        current,
        version=current.version + 1,
        datasets=check_datasets(datasets) if datasets is not None else current.datasets,
        purpose=purpose or current.purpose,
        valid_from=valid_from or current.valid_from,
        valid_until=valid_until or current.valid_until,
        created_at=now,
        signature=b"",
    )
    if amended.valid_until <= amended.valid_from:
        raise ValueError("valid_until must be after valid_from")
    amended = replace(amended, signature=sign(amended.content()))  # signed before any lock is taken
    try:
        with engine.begin() as conn:
            done = conn.execute(
                update(consents)
                .where(consents.c.id == consent_id, consents.c.version == current.version, consents.c.status == ACTIVE)
                .values(status=SUPERSEDED, superseded_at=to_text(now))
            ).rowcount
            if done != 1:
                raise StaleConsent(f"consent {consent_id} changed meanwhile")
            conn.execute(consents.insert(), consent_row(amended))
    except IntegrityError as exc:
        raise StaleConsent(f"consent {consent_id} was amended meanwhile") from exc
    return amended


def revoke_consent(engine: Engine, consent_id: str, person_ref: str, *, now: datetime | None = None) -> Consent:
    """Ends the consent at once; only the person who gave it may (PermissionError otherwise)."""
    ensure_schema(engine)
    now = now or utc_now()
    current = _own_current(engine, consent_id, person_ref, now)
    if current.status == REVOKED:
        return current  # revoking twice is harmless: the portal may resend on a flaky connection
    with engine.begin() as conn:
        conn.execute(
            update(consents)
            .where(
                consents.c.id == consent_id,
                consents.c.version == current.version,
                consents.c.status.in_((ACTIVE, EXPIRED)),
            )
            .values(status=REVOKED, revoked_at=to_text(now))
        )
        row = (
            conn.execute(select(consents).where(consents.c.id == consent_id, consents.c.version == current.version))
            .mappings()
            .one()
        )
    return row_consent(row, to_text(now))


def _own_current(engine: Engine, consent_id: str, person_ref: str, now: datetime) -> Consent:
    with engine.connect() as conn:
        row = _latest(conn, consents, consent_id)
    if row is None:
        raise LookupError(f"no consent {consent_id}")
    if row["person_ref"] != person_ref:
        raise PermissionError("only the person who gave a consent may change it")
    return row_consent(row, to_text(now))


def get_consent(engine: Engine, consent_id: str, *, now: datetime | None = None) -> Consent | None:
    """The latest version of a consent, whatever its status."""
    ensure_schema(engine)
    with engine.connect() as conn:
        row = _latest(conn, consents, consent_id)
    return None if row is None else row_consent(row, to_text(now or utc_now()))


def check_consent(
    engine: Engine,
    consent_id: str,
    recipient: str,
    dataset: str,
    purpose: str | Purpose,
    at: datetime | None = None,
    *,
    verify: Verifier,
) -> Consent | None:
    """The consent that allows this exchange now (or ``at``), or None: what the hub asks before forwarding.

    ``verify(content, signature)`` checks the person's signature, so a row edited in the database is refused.
    """
    ensure_schema(engine)
    at = at or utc_now()
    purpose_id = purpose.id if isinstance(purpose, Purpose) else purpose
    with engine.connect() as conn:
        row = (
            conn.execute(select(consents).where(consents.c.id == consent_id, consents.c.status == ACTIVE))
            .mappings()
            .first()
        )
    if row is None:
        return None
    consent = row_consent(row)
    if not consent.in_window(at) or not consent.covers(recipient, dataset, purpose_id):
        return None
    try:
        return consent if verify(consent.content(), consent.signature) else None
    except Exception:  # a verifier that throws on garbage must not turn a forged row into an allowed one
        return None


def consents_of(
    engine: Engine, person_ref: str, *, include_ended: bool = False, now: datetime | None = None
) -> list[Consent]:
    """The person's consents (latest version of each), newest first; ended ones only when asked."""
    ensure_schema(engine)
    now_text = to_text(now or utc_now())
    with engine.connect() as conn:
        rows = (
            conn.execute(
                select(consents)
                .where(consents.c.person_ref == person_ref, consents.c.status != SUPERSEDED)
                .order_by(consents.c.created_at.desc(), consents.c.id)
            )
            .mappings()
            .all()
        )
    found = [row_consent(row, now_text) for row in rows]
    return found if include_ended else [c for c in found if c.status == ACTIVE]


def expire_consents(engine: Engine, now: datetime | None = None) -> int:
    """Marks active consents past their end as expired (reads already treat them so); returns how many."""
    ensure_schema(engine)
    now_text = to_text(now or utc_now())
    with engine.begin() as conn:
        return conn.execute(
            update(consents)
            .where(consents.c.status == ACTIVE, consents.c.valid_until <= now_text)
            .values(status=EXPIRED)
        ).rowcount


def record_prior_intent(
    engine: Engine,
    person_ref: str,
    kind: str,
    scope: Iterable[str] = (ALL_SERVICES,),
    *,
    sign: Signer,
    now: datetime | None = None,
) -> PriorIntent:
    """Records a signed standing instruction; an active one of the same kind becomes its previous version."""
    ensure_schema(engine)
    if kind not in PRIOR_INTENT_KINDS:
        raise ValueError(f"unknown prior intent kind {kind!r}")
    now = now or utc_now()
    person_ref = check_person_ref(person_ref)
    with engine.connect() as conn:
        current = (
            conn.execute(
                select(prior_intents).where(
                    prior_intents.c.person_ref == person_ref,
                    prior_intents.c.kind == kind,
                    prior_intents.c.status == ACTIVE,
                )
            )
            .mappings()
            .first()
        )
    intent = PriorIntent(
        id=current["id"] if current else _new_id(),
        version=current["version"] + 1 if current else 1,
        person_ref=person_ref,
        kind=kind,
        scope=check_scope(scope),
        status=ACTIVE,
        signature=b"",
        created_at=now,
    )
    intent = replace(intent, signature=sign(intent.content()))
    try:
        with engine.begin() as conn:
            if current is not None:
                done = conn.execute(
                    update(prior_intents)
                    .where(
                        prior_intents.c.id == current["id"],
                        prior_intents.c.version == current["version"],
                        prior_intents.c.status == ACTIVE,
                    )
                    .values(status=SUPERSEDED, superseded_at=to_text(now))
                ).rowcount
                if done != 1:
                    raise StaleConsent("the prior intent changed meanwhile")
            conn.execute(prior_intents.insert(), intent_row(intent))
    except IntegrityError as exc:
        raise StaleConsent("another prior intent of this kind was recorded meanwhile") from exc
    return intent


def revoke_prior_intent(engine: Engine, intent_id: str, person_ref: str, *, now: datetime | None = None) -> PriorIntent:
    """Withdraws a prior intent; only its person may (PermissionError otherwise)."""
    ensure_schema(engine)
    now = now or utc_now()
    with engine.begin() as conn:
        row = _latest(conn, prior_intents, intent_id)
        if row is None:
            raise LookupError(f"no prior intent {intent_id}")
        if row["person_ref"] != person_ref:
            raise PermissionError("only the person who made a prior intent may withdraw it")
        conn.execute(
            update(prior_intents)
            .where(
                prior_intents.c.id == intent_id,
                prior_intents.c.version == row["version"],
                prior_intents.c.status == ACTIVE,
            )
            .values(status=REVOKED, revoked_at=to_text(now))
        )
        row = (
            conn.execute(
                select(prior_intents).where(prior_intents.c.id == intent_id, prior_intents.c.version == row["version"])
            )
            .mappings()
            .one()
        )
    return row_intent(row)


def people_with_prior_intent(
    engine: Engine, kind: str, service_id: str, person_refs: list[str], chunk: int = 5000
) -> set[str]:
    """Of ``person_refs``, those with an active prior intent ``kind`` covering the service (a bulk has_prior_intent)."""
    ensure_schema(engine)
    found: set[str] = set()
    with engine.connect() as conn:
        for start in range(0, len(person_refs), chunk):
            rows = conn.execute(
                select(prior_intents).where(
                    prior_intents.c.person_ref.in_(person_refs[start : start + chunk]),
                    prior_intents.c.kind == kind,
                    prior_intents.c.status == ACTIVE,
                )
            ).mappings()
            found.update(row["person_ref"] for row in rows if row_intent(row).covers(service_id))
    return found


def prior_intent_mask(engine: Engine, kind: str, service_id: str, person_refs: pa.Array | pa.ChunkedArray) -> pa.Array:
    """people_with_prior_intent for a column of persons (a municipality's notices): True where the person has an
    active prior intent ``kind`` covering the service. A long column is matched against every active intent of
    the kind, read once (the people who opted in, not the population), instead of by lists of 5,000."""
    if len(person_refs) <= 5000:
        found = people_with_prior_intent(engine, kind, service_id, person_refs.to_pylist())
    else:
        ensure_schema(engine)
        with engine.connect() as conn:
            rows = conn.execute(
                select(prior_intents).where(prior_intents.c.kind == kind, prior_intents.c.status == ACTIVE)
            ).mappings()
            found = {row["person_ref"] for row in rows if row_intent(row).covers(service_id)}
    mask = pc.fill_null(pc.is_in(person_refs, value_set=pa.array(list(found), pa.string())), False)
    return mask.combine_chunks() if isinstance(mask, pa.ChunkedArray) else mask


def has_prior_intent(
    engine: Engine, person_ref: str, kind: str, service_id: str, *, verify: Verifier | None = None
) -> bool:
    """Whether the person said in advance ``kind`` for this service (e.g. pay without an application)."""
    ensure_schema(engine)
    with engine.connect() as conn:
        row = (
            conn.execute(
                select(prior_intents).where(
                    prior_intents.c.person_ref == person_ref,
                    prior_intents.c.kind == kind,
                    prior_intents.c.status == ACTIVE,
                )
            )
            .mappings()
            .first()
        )
    if row is None:
        return False
    intent = row_intent(row)
    if not intent.covers(service_id):
        return False
    if verify is None:
        return True
    try:
        return bool(verify(intent.content(), intent.signature))
    except Exception:  # same reasoning as check_consent: failing to verify means no
        return False


def prior_intents_of(engine: Engine, person_ref: str) -> list[PriorIntent]:
    """The person's active prior intents."""
    ensure_schema(engine)
    with engine.connect() as conn:
        rows = (
            conn.execute(
                select(prior_intents)
                .where(prior_intents.c.person_ref == person_ref, prior_intents.c.status == ACTIVE)
                .order_by(prior_intents.c.kind)
            )
            .mappings()
            .all()
        )
    return [row_intent(row) for row in rows]


def history(engine: Engine, person_ref: str, *, now: datetime | None = None) -> list[Consent | PriorIntent]:
    """Every version of the person's consents and prior intents, oldest first: what they agreed to, when."""
    ensure_schema(engine)
    now_text = to_text(now or utc_now())
    with engine.connect() as conn:
        given = conn.execute(select(consents).where(consents.c.person_ref == person_ref)).mappings().all()
        intents = conn.execute(select(prior_intents).where(prior_intents.c.person_ref == person_ref)).mappings().all()
    records: list[Consent | PriorIntent] = [row_consent(row, now_text) for row in given]
    records += [row_intent(row) for row in intents]
    return sorted(records, key=lambda r: (r.created_at, r.id, r.version))
