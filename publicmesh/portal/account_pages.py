"""Login, logout, acting for a principal, the inbox and the settings pages."""

from __future__ import annotations

import base64
import json

from fastapi import FastAPI, Form, Request
from fastapi.responses import JSONResponse, RedirectResponse

from publicmesh import accounts, consent, notices
from publicmesh.identity import CardError, CardLocked, IdentityError, LoginError, WrongPin
from publicmesh.identity.mandates import SCOPES
from publicmesh.notices.verification import owns_code
from publicmesh.portal import format as fmt
from publicmesh.portal.i18n import translate
from publicmesh.portal.proxies import minor_children

PRIOR_INTENT = "auto-pay-eligible-benefits"
# the kinds of notice the inbox offers to show alone (every kind is labelled on the notice itself)
INBOX_FILTERS = ("service-eligibility", "application-decision", "payout", "account-request", "security")


def register(app: FastAPI, portal) -> None:
    render, current, language, NotFound = app.state.render, app.state.current, app.state.language, app.state.NotFound
    people = portal.identity

    def demo_cards() -> list[dict]:
        path = portal.settings.data_dir / "demo-cards.json"
        return json.loads(path.read_text(encoding="utf-8")) if path.exists() else []

    def start_session(person_ref: str):
        holder = people.directory.get(person_ref)
        if holder is None:
            raise LoginError("no card holder record", reason="unknown-card")
        session = portal.sessions.create(person_ref, holder.display_name, holder.municipality)
        response = RedirectResponse("/", status_code=303)
        response.set_cookie("portal_session", session.id, httponly=True, samesite="lax", max_age=1800)
        return response

    def login_page(request: Request, error: str | None = None, chosen: str | None = None, status: int = 200):
        challenge = people.identity.login.new_challenge()
        return render(
            request, "login.html", None, status, challenge=challenge.id, cards=demo_cards(), chosen=chosen, error=error
        )

    @app.get("/login")
    async def login_form(request: Request):
        return login_page(request)

    @app.post("/login")
    async def login_with_card(
        request: Request, card: str = Form(...), pin: str = Form(...), challenge: str = Form(...)
    ):
        """The card reader is simulated for demo cards: the card signs the challenge after its PIN."""
        lang = language(request)
        try:
            software_card = people.identity.cards.card(card)
            signature = software_card.sign_auth(_nonce(people, challenge), pin)
            person_ref = people.identity.login.verify_login(challenge, software_card.auth_certificate_pem(), signature)
        except WrongPin as exc:
            return login_page(request, translate("wrong_pin", lang, n=exc.tries_left), card, 401)
        except CardLocked:
            return login_page(request, translate("card_locked", lang), card, 423)
        except (CardError, LoginError, IdentityError, LookupError, KeyError):
            return login_page(request, translate("login_failed", lang), card, 401)
        return start_session(person_ref)

    @app.get("/login/challenge")
    async def challenge_for_wallet():
        challenge = people.identity.login.new_challenge()
        return {"challenge_id": challenge.id, "nonce": base64.b64encode(challenge.nonce).decode()}

    @app.post("/login/wallet")
    async def login_with_wallet(request: Request):
        doc = await request.json()
        try:
            person_ref = people.identity.login.verify_login(
                doc["challenge"], doc["certificate"], base64.b64decode(doc["signature"])
            )
        except (LoginError, IdentityError, KeyError, ValueError) as exc:
            return JSONResponse(
                {"detail": translate("login_failed", language(request)), "reason": getattr(exc, "reason", None)},
                status_code=401,
            )
        return start_session(person_ref)

    @app.post("/logout")
    async def logout(request: Request, csrf: str = Form("")):
        session = current(request)
        if session and csrf == session.csrf:
            portal.sessions.end(session.id)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie("portal_session")
        return response

    @app.post("/act-for")
    async def act_for(request: Request, csrf: str = Form(...), mandate: str = Form(""), child: str = Form("")):
        session = current(request)
        if session is None or csrf != session.csrf:
            raise NotFound("no session or bad form token")
        if child:  # statutory: re-established from the registry's household, never taken from the form
            household = await portal.mesh.self_information(session.actor_ref, session.municipality, keys=("household",))
            minors = {c["subject"]: c for c in minor_children(household["household"], session.actor_ref)}
            if child not in minors:
                raise NotFound("not a minor child in this person's household")
            name = translate("child_of_age", language(request), age=minors[child]["age"])
            portal.sessions.act_for(
                session, child, name, session.municipality, f"statutory:{session.actor_ref}:{child}"
            )
            return RedirectResponse("/", status_code=303)
        if not mandate:
            portal.sessions.act_for(session, None, None, None, None)
            return RedirectResponse("/", status_code=303)
        held = people.identity.mandates.get(mandate)
        if held is None or held.proxy_ref != session.actor_ref or not held.permits(next(iter(held.scopes))):
            raise NotFound(f"mandate {mandate} is not held by this person")
        holder = people.directory.get(held.principal_ref)
        portal.sessions.act_for(session, held.principal_ref, holder.display_name, holder.municipality, held.id)
        return RedirectResponse("/", status_code=303)

    @app.get("/notices")
    async def inbox(request: Request, category: str | None = None):
        """The inbox, newest first; ``category`` shows one kind only (an unknown one shows all)."""
        session = current(request)
        if session is None:
            return RedirectResponse("/login", status_code=303)
        if session.acting_for and not people.mandate_allows(session, "notices"):
            raise NotFound("mandate does not cover notices")
        lang = language(request)
        chosen = category if category in notices.CATEGORIES else None
        items = [
            {
                "id": n.id,
                "read_at": n.read_at,
                "title": n.title_en if lang == "en" else n.title_ja,
                "body": n.body_en if lang == "en" else n.body_ja,
                "sent": fmt.date(n.created_at.isoformat(), lang),
                "category": n.category,
            }
            for n in notices.inbox(people.notices, session.subject_ref, limit=50, category=chosen)
        ]
        return render(
            request,
            "notices.html",
            session,
            active="notices",
            notices=items,
            unread=people.unread(session),
            category=chosen,
            filters=INBOX_FILTERS,
        )

    @app.post("/notices/{notice_id}/read")
    async def read_notice(request: Request, notice_id: str, csrf: str = Form(...)):
        session = current(request)
        if session is None or csrf != session.csrf:
            raise NotFound("no session or bad form token")
        if session.acting_for and not people.mandate_allows(session, "notices"):
            raise NotFound("mandate does not cover notices")
        try:
            notices.mark_read(people.notices, notice_id, session.subject_ref)
        except (LookupError, PermissionError):
            raise NotFound(f"notice {notice_id} is not this person's") from None
        return RedirectResponse("/notices", status_code=303)

    def settings_page(request: Request, session, message=None, error=None, pending_code=None, status=200):
        subject = session.subject_ref
        account = accounts.account_of(people.accounts, subject)
        holder = people.directory.get(session.actor_ref)
        return render(
            request,
            "settings.html",
            session,
            status,
            active="settings",
            message=message,
            error=error,
            pending_code=pending_code,
            account=accounts.masked(account) if account else None,
            contacts=notices.contacts(people.notices, subject),
            proxy_code=holder.proxy_code if holder else "",
            mandates=people.mandates_given(session.actor_ref),
            scopes=sorted(SCOPES),
            consents=[
                {"id": c.id, "recipient": c.recipient, "datasets": c.datasets, "purpose": c.purpose.id}
                for c in consent.consents_of(people.consents, session.actor_ref)
            ],
            prior_intent=consent.has_prior_intent(people.consents, session.actor_ref, PRIOR_INTENT, "*"),
            wallets=people.identity.wallets.list_wallets(session.actor_ref),
            unread=people.unread(session),
            signing_status=_signing_status(people, session.actor_ref),
        )

    def settings_session(request: Request, csrf: str | None = None, own_only: bool = False):
        session = current(request)
        if session is None:
            return None
        if csrf is not None and csrf != session.csrf:
            raise NotFound("bad form token")
        if session.acting_for and (own_only or not people.mandate_allows(session, "settings")):
            raise NotFound("mandate does not cover settings")
        return session

    @app.get("/settings")
    async def settings(request: Request):
        session = settings_session(request)
        if session is None:
            return RedirectResponse("/login", status_code=303)
        return settings_page(request, session)

    @app.post("/settings/account")
    async def register_account(
        request: Request,
        csrf: str = Form(...),
        bank: str = Form(...),
        branch: str = Form(...),
        type: str = Form(...),
        number: str = Form(...),
        holder: str = Form(...),
    ):
        session = settings_session(request, csrf, own_only=True)
        lang = language(request)
        kana = await portal.name_kana(session.actor_ref, session.municipality)
        try:
            account = accounts.validate_account(bank, branch, type, number, holder)
            accounts.register_account(people.accounts, session.actor_ref, account, *kana)
        except accounts.AccountError as exc:
            return settings_page(request, session, error=exc.message_en if lang == "en" else exc.message_ja, status=422)
        return settings_page(request, session, message=translate("account_saved", lang))

    @app.post("/settings/contact")
    async def start_contact(request: Request, csrf: str = Form(...), kind: str = Form(...), address: str = Form(...)):
        session = settings_session(request, csrf)
        lang = language(request)
        try:
            code_id = notices.start_contact_verification(
                people.notices, session.subject_ref, kind, address, channel=people.channel
            )
        except (ValueError, notices.VerificationRateLimited) as exc:
            return settings_page(request, session, error=str(exc), status=422)
        return settings_page(request, session, message=translate("code_sent", lang), pending_code=code_id)

    @app.post("/settings/contact/confirm")
    async def confirm_contact(request: Request, csrf: str = Form(...), code_id: str = Form(...), code: str = Form(...)):
        session = settings_session(request, csrf)
        lang = language(request)
        if not owns_code(people.notices, session.subject_ref, code_id):
            raise NotFound(f"verification {code_id} is not this person's")
        ok = notices.confirm_contact(people.notices, session.subject_ref, code_id, code)
        if not ok:
            return settings_page(
                request, session, error=translate("code_wrong", lang), pending_code=code_id, status=422
            )
        return settings_page(request, session, message=translate("contact_verified", lang))

    @app.post("/settings/mandates")
    async def grant_mandate(
        request: Request,
        csrf: str = Form(...),
        proxy_code: str = Form(...),
        scopes: list[str] = Form(...),
        days: int = Form(90),
    ):
        session = settings_session(request, csrf, own_only=True)
        lang = language(request)
        try:
            people.grant(session.actor_ref, proxy_code, set(scopes), max(1, min(days, 1095)))
        except (LookupError, ValueError):
            return settings_page(request, session, error=translate("proxy_unknown", lang), status=422)
        return settings_page(request, session, message=translate("mandate_granted", lang))

    @app.post("/settings/mandates/{mandate_id}/revoke")
    async def revoke_mandate(request: Request, mandate_id: str, csrf: str = Form(...)):
        session = settings_session(request, csrf, own_only=True)
        try:
            people.identity.mandates.revoke(mandate_id, session.actor_ref)
        except (LookupError, PermissionError):
            raise NotFound(f"mandate {mandate_id} is not this person's") from None
        return settings_page(request, session, message=translate("mandate_revoked", language(request)))

    @app.post("/settings/consents/{consent_id}/revoke")
    async def revoke_consent(request: Request, consent_id: str, csrf: str = Form(...)):
        session = settings_session(request, csrf, own_only=True)
        try:
            consent.revoke_consent(people.consents, consent_id, session.actor_ref)
        except (LookupError, PermissionError):
            raise NotFound(f"consent {consent_id} is not this person's") from None
        return RedirectResponse("/settings", status_code=303)

    @app.post("/settings/prior-intent")
    async def prior_intent(request: Request, csrf: str = Form(...), enable: str = Form(...), password: str = Form("")):
        session = settings_session(request, csrf, own_only=True)
        if enable == "1":
            card = people.identity.cards.cards_of(session.actor_ref)[0]
            try:  # signed with the card's signing key (署名用電子証明書), which needs the signing password
                consent.record_prior_intent(
                    people.consents,
                    session.actor_ref,
                    PRIOR_INTENT,
                    ("*",),
                    sign=lambda data: card.sign_document(data, password),
                )
            except WrongPin as exc:
                return settings_page(
                    request, session, error=translate("wrong_pin", language(request), n=exc.tries_left), status=401
                )
            except CardError as exc:
                return settings_page(request, session, error=str(exc), status=422)
        else:
            for intent in consent.prior_intents_of(people.consents, session.actor_ref):
                if intent.kind == PRIOR_INTENT and intent.status == "active":
                    consent.revoke_prior_intent(people.consents, intent.id, session.actor_ref)
        return RedirectResponse("/settings", status_code=303)

    @app.post("/settings/signing-certificate")
    async def reissue_signing(request: Request, csrf: str = Form(...), password: str = Form(...)):
        """Reissue after a move: the person is logged in with the card's auth certificate; facts come from the registry."""
        session = settings_session(request, csrf, own_only=True)
        lang = language(request)
        found = await portal.mesh.self_information(session.actor_ref, session.municipality, keys=("person", "address"))
        person, address = found["person"].get("data", {}), found["address"].get("data", {})
        card = people.identity.cards.cards_of(session.actor_ref)[0]
        try:
            people.identity.authority.reissue_signing_certificate(
                {
                    "family_name": person["family_name"],
                    "given_name": person["given_name"],
                    "address": address["address"],
                    "birth_date": person["birth_date"],
                    "sex": person["sex"],
                },
                card,
                signing_password=password,
            )
        except WrongPin as exc:
            return settings_page(request, session, error=translate("wrong_pin", lang, n=exc.tries_left), status=401)
        except (CardError, KeyError) as exc:
            return settings_page(request, session, error=str(exc), status=422)
        return settings_page(request, session, message=translate("signing_reissued", lang))

    @app.post("/settings/wallet")
    async def enrol_wallet(
        request: Request, csrf: str = Form(...), device_name: str = Form(...), spki: str = Form(...)
    ):
        session = settings_session(request, csrf, own_only=True)
        try:
            pem = people.identity.wallets.enrol_wallet(session.actor_ref, device_name[:60], base64.b64decode(spki))
        except (IdentityError, ValueError) as exc:
            return JSONResponse({"detail": str(exc)}, status_code=422)
        device = people.identity.wallets.list_wallets(session.actor_ref)[-1]
        return {"certificate_pem": pem, "device_id": device.device_id}

    @app.post("/settings/wallets/{device_id}/revoke")
    async def revoke_wallet(request: Request, device_id: str, csrf: str = Form(...)):
        session = settings_session(request, csrf, own_only=True)
        try:
            people.identity.wallets.revoke_wallet(session.actor_ref, device_id)
        except (LookupError, PermissionError, IdentityError):
            raise NotFound(f"wallet {device_id} is not this person's") from None
        return RedirectResponse("/settings", status_code=303)


def _signing_status(people, person_ref: str) -> str:
    """'good' when the person holds a valid signing certificate, else 'revoked'."""
    from publicmesh.identity import SIGNING

    records = people.identity.authority.certificates_of(person_ref, SIGNING)
    return "good" if any(r.status == "good" for r in records) else "revoked"


def _nonce(people, challenge_id: str) -> bytes:
    from sqlalchemy import select

    from publicmesh.identity.store import challenges

    with people.identity.engine.connect() as conn:
        row = conn.execute(select(challenges.c.nonce).where(challenges.c.challenge_id == challenge_id)).first()
    if row is None:
        raise LoginError("unknown challenge", reason="expired-challenge")
    return bytes(row.nonce)
