"""The portal's pages. Every handler works on ``session.subject_ref`` only; nothing takes a person id from the URL."""

from __future__ import annotations

import base64
from typing import Annotated

from cryptography.hazmat.primitives import serialization
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse

from publicmesh import notices
from publicmesh.audit.checkpoint import Checkpoint
from publicmesh.audit.merkle import leaf_hash, verify_inclusion
from publicmesh.audit.subjects import verify_in_leaf
from publicmesh.portal import format as fmt
from publicmesh.portal import log_view
from publicmesh.portal.core import Portal
from publicmesh.portal.deps import (
    NotFound,
    PortalDep,
    RenderDep,
    require_any,
    require_notices,
    require_self_information,
    to_login,
)
from publicmesh.portal.i18n import translate
from publicmesh.portal.mesh import SOURCES
from publicmesh.portal.proxies import minor_children
from publicmesh.portal.sessions import Session

HOW_TO_VERIFY = (
    "RFC 9162 §2.1.3.2: leaf hash = SHA-256(0x00 || leaf), included under the checkpoint's root. For an "
    "exchange about many persons, subject_proof is the inclusion proof of the chunk of subjects naming "
    "this person (its leaf: SHA-256(0x00 || the chunk as compact JSON)) under the leaf's subjects.root. "
    "The checkpoint signature is Ed25519 over its note"
)


router = APIRouter()
SelfInformation = Annotated[Session | None, Depends(require_self_information)]
MAX_POSITION = 2**63 - 2  # a log position, and the page above it, fit the stores' 64-bit integers


@router.get("/")
async def home(
    request: Request, session: Annotated[Session | None, Depends(require_any)], portal: PortalDep, render: RenderDep
):
    if session is None:
        return to_login(request)
    children = []
    if not session.acting_for:
        household = await portal.mesh.self_information(session.actor_ref, session.municipality, keys=("household",))
        children = minor_children(household["household"], session.actor_ref)
    people = portal.people
    return render(
        "home.html",
        session,
        active="home",
        display_name=session.actor_name,
        unread=unread(portal, session),
        mandates=[] if session.acting_for else people.mandates_held(session),
        children=children,
        proxy_actions=people.proxy_log.for_principal(session.subject_ref, 10) if not session.acting_for else [],
    )


def unread(portal: Portal, session: Session) -> int:
    """Unread notices, shown only where the person (or their mandate) may read notices."""
    if session.acting_for and not portal.people.mandate_allows(session, "notices"):
        return 0
    return portal.people.unread(session)


@router.get("/me")
async def me(request: Request, session: SelfInformation, portal: PortalDep, render: RenderDep):
    if session is None:
        return to_login(request)
    catalog = await portal.catalog()
    found = await portal.mesh.self_information(session.subject_ref, session.subject_municipality)
    sections = []
    for source in SOURCES:
        result = found[source.key]
        section = {"key": source.key, "state": result["state"]}
        if result["state"] == "ok":
            attributes = catalog.get((source.provider.split("/")[2], source.dataset), {})
            section["rows"] = _rows(result["data"], attributes, render.lang)
            section["audit_record"] = result["audit_record"]
            section["provider_title"] = portal.member_title(result["provider"], render.lang)
        sections.append(section)
    return render("me.html", session, active="me", sections=sections, unread=unread(portal, session))


def _rows(data: dict, attributes: dict, lang: str) -> list[dict]:
    rows = []
    for name, value in data.items():
        if name == "members":
            value = len(value)
            label = translate("household_members", lang)
        else:
            label = fmt.label(name, attributes.get(name), lang)
            value = fmt.display(name, value, attributes.get(name), lang)
        rows.append({"label": label, "value": value})
    return rows


async def verified_records(portal: Portal, session: Session, before: int | None) -> tuple[dict, Checkpoint]:
    """A page of the person's exchange records, each marked verified (in the signed log, and about this person)."""
    page = await portal.mesh.exchange_records(session.subject_ref, before)
    c = page["checkpoint"]
    checkpoint = Checkpoint(
        c["log_id"], c["tree_size"], base64.b64decode(c["root"]), c["timestamp"], base64.b64decode(c["signature"])
    )
    signed = checkpoint.verify(portal.audit_key)
    for r in page["records"]:
        proof = [base64.b64decode(h) for h in r["inclusion_proof"]]
        leaf = base64.b64decode(r["leaf"])
        r["verified"] = signed and verify_inclusion(
            r["position"], checkpoint.tree_size, leaf_hash(leaf), proof, checkpoint.root
        )
        if "subject_proof" in r:  # an exchange about many persons: also that its subject tree names this one
            r["verified"] = r["verified"] and verify_in_leaf(r["subject_proof"], leaf)
    return page, checkpoint


@router.get("/records")
async def records(
    request: Request,
    session: SelfInformation,
    portal: PortalDep,
    render: RenderDep,
    before: Annotated[int | None, Query(ge=0, le=MAX_POSITION + 1)] = None,
):
    if session is None:
        return to_login(request)
    lang = render.lang
    await portal.catalog()
    page, checkpoint = await verified_records(portal, session, before)
    rows = []
    for r in page["records"]:
        rows.append(
            {
                "position": r["position"],
                "verified": r["verified"],
                "when": fmt.date(r["at"], lang) + " " + r["at"][11:16] + " UTC",
                "consumer_title": portal.member_title(r["consumer"], lang),
                "provider_title": portal.member_title(r["provider"], lang),
                "what": f"{r['dataset']}: " + ", ".join(r["attributes"]),
                "why": r["purpose"],
                "legal_basis": r["legal_basis"],
            }
        )
    older = page["records"][-1]["position"] if len(page["records"]) == 50 else None
    return render(
        "records.html",
        session,
        active="records",
        records=rows,
        checkpoint=checkpoint,
        # What the browser keeps to check, on the next visit, that the log only grew (static/consistency.js).
        checkpoint_root=base64.b64encode(checkpoint.root).decode("ascii"),
        witness=await log_view.witnessed(portal),
        older=older,
        unread=unread(portal, session),
    )


@router.get("/records/{position}.json")
async def record_proof(
    request: Request, position: Annotated[int, Path(ge=0, le=MAX_POSITION)], session: SelfInformation, portal: PortalDep
):
    """Everything needed to check one record offline: the leaf, the proof, the signed checkpoint, the key."""
    if session is None:
        return to_login(request)
    page, _ = await verified_records(portal, session, position + 1)
    record = next((r for r in page["records"] if r["position"] == position), None)
    if record is None:
        raise NotFound(f"record {position} is not about this person")
    key = portal.audit_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return JSONResponse(
        {
            "record": record,
            "checkpoint": page["checkpoint"],
            "log_public_key_pem": key.decode(),
            "how_to_verify": HOW_TO_VERIFY,
        }
    )


@router.get("/notices/{notice_id}/open")
async def open_notice(
    request: Request, notice_id: str, session: Annotated[Session | None, Depends(require_notices)], portal: PortalDep
):
    """Tapping a notice reads it and goes where it points (a service notice: straight to the offer)."""
    if session is None:
        return to_login(request)
    try:
        notice = notices.mark_read(portal.people.notices, notice_id, session.subject_ref)
    except (LookupError, PermissionError):
        raise NotFound(f"notice {notice_id} is not this person's") from None
    target = notice.links.get("open") or next(iter(notice.links.values()), "")
    if not target.startswith("/") or target.startswith("//") or "\\" in target:  # only this portal's pages
        target = f"/notices#n-{notice.id}"
    return RedirectResponse(target, status_code=303)
