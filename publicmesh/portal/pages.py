"""The portal's pages. Every handler works on ``session.subject_ref`` only; nothing takes a person id from the URL."""

from __future__ import annotations

import base64

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse

from publicmesh import notices
from publicmesh.audit.checkpoint import Checkpoint
from publicmesh.audit.merkle import leaf_hash, verify_inclusion
from publicmesh.audit.subjects import verify_in_leaf
from publicmesh.portal import format as fmt
from publicmesh.portal.i18n import translate
from publicmesh.portal.mesh import SOURCES
from publicmesh.portal.proxies import minor_children

HOW_TO_VERIFY = (
    "RFC 9162 §2.1.3.2: leaf hash = SHA-256(0x00 || leaf), included under the checkpoint's root. For an "
    "exchange about many persons, subject_proof is the inclusion proof of the chunk of subjects naming "
    "this person (its leaf: SHA-256(0x00 || the chunk as compact JSON)) under the leaf's subjects.root. "
    "The checkpoint signature is Ed25519 over its note"
)


def register(app: FastAPI, portal) -> None:
    render, current, language, NotFound = app.state.render, app.state.current, app.state.language, app.state.NotFound

    def require(request: Request, scope: str | None = "self-information"):
        """The logged-in session, or None; acting for someone needs the mandate to cover ``scope`` (None: any)."""
        session = current(request)
        if session is None:
            return None
        if session.acting_for:
            if scope is not None and not portal.identity.mandate_allows(session, scope):
                raise NotFound(f"mandate does not cover {scope}")
            portal.identity.proxy_log.record(
                session.acting_for, session.actor_ref, session.mandate_id or "", f"{request.method} {request.url.path}"
            )
        portal.sessions.touch(session)
        return session

    def check_csrf(session, token: str) -> None:
        if token != session.csrf:
            raise NotFound("bad form token")

    def to_login(request: Request):
        chosen = request.query_params.get("lang")
        return RedirectResponse(f"/login?lang={chosen}" if chosen in ("ja", "en") else "/login", status_code=303)

    @app.get("/healthz")
    async def health():
        return {"status": "ok", "system": "portal"}

    @app.get("/")
    async def home(request: Request):
        session = require(request, None)
        if session is None:
            return to_login(request)
        children = []
        if not session.acting_for:
            household = await portal.mesh.self_information(session.actor_ref, session.municipality, keys=("household",))
            children = minor_children(household["household"], session.actor_ref)
        return render(
            request,
            "home.html",
            session,
            active="home",
            display_name=session.actor_name,
            unread=_unread(session),
            mandates=[] if session.acting_for else portal.identity.mandates_held(session),
            children=children,
            proxy_actions=portal.identity.proxy_log.for_principal(session.subject_ref, 10)
            if not session.acting_for
            else [],
        )

    def _unread(session) -> int:
        """Unread notices, shown only where the person (or their mandate) may read notices."""
        if session.acting_for and not portal.identity.mandate_allows(session, "notices"):
            return 0
        return portal.identity.unread(session)

    @app.get("/me")
    async def me(request: Request):
        session = require(request)
        if session is None:
            return to_login(request)
        lang = language(request)
        catalog = await portal.catalog()
        found = await portal.mesh.self_information(session.subject_ref, session.subject_municipality)
        sections = []
        for source in SOURCES:
            result = found[source.key]
            section = {"key": source.key, "state": result["state"]}
            if result["state"] == "ok":
                attributes = catalog.get((source.provider.split("/")[2], source.dataset), {})
                section["rows"] = _rows(result["data"], attributes, lang, session)
                section["audit_record"] = result["audit_record"]
                section["provider_title"] = portal.member_title(result["provider"], lang)
            sections.append(section)
        return render(request, "me.html", session, active="me", sections=sections, unread=_unread(session))

    def _rows(data: dict, attributes: dict, lang: str, session) -> list[dict]:
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

    async def _records(session, before: int | None):
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

    @app.get("/records")
    async def records(request: Request, before: int | None = None):
        session = require(request)
        if session is None:
            return to_login(request)
        lang = language(request)
        await portal.catalog()
        page, checkpoint = await _records(session, before)
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
            request,
            "records.html",
            session,
            active="records",
            records=rows,
            checkpoint=checkpoint,
            older=older,
            unread=_unread(session),
        )

    @app.get("/records/{position}.json")
    async def record_proof(request: Request, position: int):
        """Everything needed to check one record offline: the leaf, the proof, the signed checkpoint, the key."""
        session = require(request)
        if session is None:
            return to_login(request)
        page, _ = await _records(session, position + 1)
        record = next((r for r in page["records"] if r["position"] == position), None)
        if record is None:
            raise NotFound(f"record {position} is not about this person")
        from cryptography.hazmat.primitives import serialization

        key = portal.audit_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        return JSONResponse(
            {
                "record": record,
                "checkpoint": page["checkpoint"],
                "log_public_key_pem": key.decode(),
                "how_to_verify": HOW_TO_VERIFY,
            }
        )

    @app.get("/notices/{notice_id}/open")
    async def open_notice(request: Request, notice_id: str):
        """Tapping a notice reads it and goes where it points (a service notice: straight to the offer)."""
        session = require(request, "notices")
        if session is None:
            return to_login(request)
        try:
            notice = notices.mark_read(portal.identity.notices, notice_id, session.subject_ref)
        except (LookupError, PermissionError):
            raise NotFound(f"notice {notice_id} is not this person's") from None
        target = notice.links.get("open") or next(iter(notice.links.values()), "")
        if not target.startswith("/") or target.startswith("//") or "\\" in target:  # only this portal's pages
            target = f"/notices#n-{notice.id}"
        return RedirectResponse(target, status_code=303)

    from publicmesh.portal import application_pages

    application_pages.register(app, portal, require, to_login)
