"""The person's inbox and settings: the receiving account, contacts, mandates, consents, the prior intent, the
signing certificate and wallets."""

from __future__ import annotations

import base64
from typing import Annotated

from fastapi import APIRouter, Depends, Form
from fastapi.responses import JSONResponse, RedirectResponse

from publicmesh import accounts, consent, notices
from publicmesh.identity import SIGNING, CardError, IdentityError, WrongPin
from publicmesh.identity.mandates import SCOPES
from publicmesh.notices.verification import owns_code
from publicmesh.portal import format as fmt
from publicmesh.portal.core import Portal
from publicmesh.portal.deps import CurrentSession, NotFound, PortalDep, Render, RenderDep
from publicmesh.portal.people import People
from publicmesh.portal.sessions import Session

PRIOR_INTENT = "auto-pay-eligible-benefits"
# the kinds of notice the inbox offers to show alone (every kind is labelled on the notice itself)
INBOX_FILTERS = ("service-eligibility", "application-decision", "payout", "account-request", "security")
router = APIRouter()


@router.get("/notices")
async def inbox(session: CurrentSession, portal: PortalDep, render: RenderDep, category: str | None = None):
    """The inbox, newest first; ``category`` shows one kind only (an unknown one shows all)."""
    if session is None:
        return RedirectResponse("/login", status_code=303)
    people = portal.people
    if session.acting_for and not people.mandate_allows(session, "notices"):
        raise NotFound("mandate does not cover notices")
    lang = render.lang
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
        "notices.html",
        session,
        active="notices",
        notices=items,
        unread=people.unread(session),
        category=chosen,
        filters=INBOX_FILTERS,
    )


@router.post("/notices/{notice_id}/read")
async def read_notice(notice_id: str, session: CurrentSession, portal: PortalDep, csrf: str = Form(...)):
    if session is None or csrf != session.csrf:
        raise NotFound("no session or bad form token")
    if session.acting_for and not portal.people.mandate_allows(session, "notices"):
        raise NotFound("mandate does not cover notices")
    try:
        notices.mark_read(portal.people.notices, notice_id, session.subject_ref)
    except (LookupError, PermissionError):
        raise NotFound(f"notice {notice_id} is not this person's") from None
    return RedirectResponse("/notices", status_code=303)


async def settings_reader(session: CurrentSession, portal: PortalDep) -> Session | None:
    """The session that may see the settings: the person's own, or a proxy's whose mandate covers settings."""
    if session is not None and session.acting_for and not portal.people.mandate_allows(session, "settings"):
        raise NotFound("mandate does not cover settings")
    return session


class SettingsForm:
    """Dependency: the session a settings form was posted in, checked against its token; ``own_only``: a form
    only the person may post for themselves (never a proxy)."""

    def __init__(self, own_only: bool):
        self.own_only = own_only

    async def __call__(self, session: CurrentSession, portal: PortalDep, csrf: str = Form(...)) -> Session:
        if session is None:
            raise NotFound("no session")
        if csrf != session.csrf:
            raise NotFound("bad form token")
        if session.acting_for and (self.own_only or not portal.people.mandate_allows(session, "settings")):
            raise NotFound("mandate does not cover settings")
        return session


settings_form = SettingsForm(own_only=False)
own_settings_form = SettingsForm(own_only=True)
Editor = Annotated[Session, Depends(settings_form)]
Owner = Annotated[Session, Depends(own_settings_form)]


def settings_page(
    render: Render, portal: Portal, session: Session, message=None, error=None, pending_code=None, status=200
):
    people = portal.people
    subject = session.subject_ref
    account = accounts.account_of(people.accounts, subject)
    holder = people.directory.get(session.actor_ref)
    return render(
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


@router.get("/settings")
async def settings(session: Annotated[Session | None, Depends(settings_reader)], portal: PortalDep, render: RenderDep):
    if session is None:
        return RedirectResponse("/login", status_code=303)
    return settings_page(render, portal, session)


@router.post("/settings/account")
async def register_account(
    session: Owner,
    portal: PortalDep,
    render: RenderDep,
    bank: str = Form(...),
    branch: str = Form(...),
    type: str = Form(...),
    number: str = Form(...),
    holder: str = Form(...),
):
    kana = await portal.name_kana(session.actor_ref, session.municipality)
    try:
        account = accounts.validate_account(bank, branch, type, number, holder)
        accounts.register_account(portal.people.accounts, session.actor_ref, account, *kana)
    except accounts.AccountError as exc:
        error = exc.message_en if render.lang == "en" else exc.message_ja
        return settings_page(render, portal, session, error=error, status=422)
    return settings_page(render, portal, session, message=render.t("account_saved"))


@router.post("/settings/contact")
async def start_contact(
    session: Editor, portal: PortalDep, render: RenderDep, kind: str = Form(...), address: str = Form(...)
):
    people = portal.people
    try:
        code_id = notices.start_contact_verification(
            people.notices, session.subject_ref, kind, address, channel=people.channel
        )
    except (ValueError, notices.VerificationRateLimited) as exc:
        return settings_page(render, portal, session, error=str(exc), status=422)
    return settings_page(render, portal, session, message=render.t("code_sent"), pending_code=code_id)


@router.post("/settings/contact/confirm")
async def confirm_contact(
    session: Editor, portal: PortalDep, render: RenderDep, code_id: str = Form(...), code: str = Form(...)
):
    people = portal.people
    if not owns_code(people.notices, session.subject_ref, code_id):
        raise NotFound(f"verification {code_id} is not this person's")
    if not notices.confirm_contact(people.notices, session.subject_ref, code_id, code):
        return settings_page(render, portal, session, error=render.t("code_wrong"), pending_code=code_id, status=422)
    return settings_page(render, portal, session, message=render.t("contact_verified"))


@router.post("/settings/mandates")
async def grant_mandate(
    session: Owner,
    portal: PortalDep,
    render: RenderDep,
    proxy_code: str = Form(...),
    scopes: list[str] = Form(...),
    days: int = Form(90),
):
    try:
        portal.people.grant(session.actor_ref, proxy_code, set(scopes), max(1, min(days, 1095)))
    except (LookupError, ValueError):
        return settings_page(render, portal, session, error=render.t("proxy_unknown"), status=422)
    return settings_page(render, portal, session, message=render.t("mandate_granted"))


@router.post("/settings/mandates/{mandate_id}/revoke")
async def revoke_mandate(mandate_id: str, session: Owner, portal: PortalDep, render: RenderDep):
    try:
        portal.people.identity.mandates.revoke(mandate_id, session.actor_ref)
    except (LookupError, PermissionError):
        raise NotFound(f"mandate {mandate_id} is not this person's") from None
    return settings_page(render, portal, session, message=render.t("mandate_revoked"))


@router.post("/settings/consents/{consent_id}/revoke")
async def revoke_consent(consent_id: str, session: Owner, portal: PortalDep):
    try:
        consent.revoke_consent(portal.people.consents, consent_id, session.actor_ref)
    except (LookupError, PermissionError):
        raise NotFound(f"consent {consent_id} is not this person's") from None
    return RedirectResponse("/settings", status_code=303)


@router.post("/settings/prior-intent")
async def prior_intent(
    session: Owner, portal: PortalDep, render: RenderDep, enable: str = Form(...), password: str = Form("")
):
    people = portal.people
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
            error = render.t("wrong_pin", n=exc.tries_left)
            return settings_page(render, portal, session, error=error, status=401)
        except CardError as exc:
            return settings_page(render, portal, session, error=str(exc), status=422)
    else:
        for intent in consent.prior_intents_of(people.consents, session.actor_ref):
            if intent.kind == PRIOR_INTENT and intent.status == "active":
                consent.revoke_prior_intent(people.consents, intent.id, session.actor_ref)
    return RedirectResponse("/settings", status_code=303)


@router.post("/settings/signing-certificate")
async def reissue_signing(session: Owner, portal: PortalDep, render: RenderDep, password: str = Form(...)):
    """Reissue after a move: the person is logged in with the card's auth certificate; facts come from the registry."""
    identity = portal.people.identity
    found = await portal.mesh.self_information(session.actor_ref, session.municipality, keys=("person", "address"))
    person, address = found["person"].get("data", {}), found["address"].get("data", {})
    card = identity.cards.cards_of(session.actor_ref)[0]
    try:
        identity.authority.reissue_signing_certificate(
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
        return settings_page(render, portal, session, error=render.t("wrong_pin", n=exc.tries_left), status=401)
    except (CardError, KeyError) as exc:
        return settings_page(render, portal, session, error=str(exc), status=422)
    return settings_page(render, portal, session, message=render.t("signing_reissued"))


@router.post("/settings/wallet")
async def enrol_wallet(session: Owner, portal: PortalDep, device_name: str = Form(...), spki: str = Form(...)):
    wallets = portal.people.identity.wallets
    try:
        pem = wallets.enrol_wallet(session.actor_ref, device_name[:60], base64.b64decode(spki))
    except (IdentityError, ValueError) as exc:
        return JSONResponse({"detail": str(exc)}, status_code=422)
    device = wallets.list_wallets(session.actor_ref)[-1]
    return {"certificate_pem": pem, "device_id": device.device_id}


@router.post("/settings/wallets/{device_id}/revoke")
async def revoke_wallet(device_id: str, session: Owner, portal: PortalDep):
    try:
        portal.people.identity.wallets.revoke_wallet(session.actor_ref, device_id)
    except (LookupError, PermissionError, IdentityError):
        raise NotFound(f"wallet {device_id} is not this person's") from None
    return RedirectResponse("/settings", status_code=303)


def _signing_status(people: People, person_ref: str) -> str:
    """'good' when the person holds a valid signing certificate, else 'revoked'."""
    records = people.identity.authority.certificates_of(person_ref, SIGNING)
    return "good" if any(r.status == "good" for r in records) else "revoked"
