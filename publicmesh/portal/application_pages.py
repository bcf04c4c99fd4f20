"""申請: benefits the person can receive (offers pushed at publishing), one-tap applications signed with the
card's signing key, returned applications fixed and signed again (再提出), and the status of each application,
live (server-sent events)."""

from __future__ import annotations

import asyncio
from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, StreamingResponse

from publicmesh import accounts
from publicmesh.applications.content import application_content, withdrawal_content
from publicmesh.applications.forms import TypedFieldError, typed_values
from publicmesh.applications.lifecycle import RESUBMITTABLE, STATUSES, WITHDRAWABLE, Status
from publicmesh.portal.core import Portal
from publicmesh.portal.deps import NotFound, PortalDep, Render, RenderDep, check_form, require_applications, to_login
from publicmesh.portal.i18n import translate
from publicmesh.portal.sessions import Session
from publicmesh.portal.submissions import Refused, signer, submit_signed

FIELD_PREFIX = "field-"  # the input name of a typed field: field-<name>
router = APIRouter()
Applicant = Annotated[Session | None, Depends(require_applications)]


async def benefits(portal: Portal, session: Session) -> dict:
    return await portal.mesh.benefits(session.subject_ref)


def masked_account(portal: Portal, session: Session):
    account = accounts.account_of(portal.people.accounts, session.subject_ref)
    return accounts.masked(account) if account else None


def page(render: Render, portal: Portal, session: Session, found: dict, **context):
    return render(
        "applications.html",
        session,
        active="applications",
        offers=found["offers"],
        applications=found["applications"],
        unread=portal.people.unread(session) if not session.acting_for else 0,
        account=masked_account(portal, session),
        status_labels={k: translate(f"status_{k}", render.lang) for k in STATUSES},
        withdrawable=WITHDRAWABLE,
        **context,
    )


@router.get("/applications")
async def applications(
    request: Request,
    session: Applicant,
    portal: PortalDep,
    render: RenderDep,
    done: str | None = None,
    resubmitted: str | None = None,
    withdrawn: str | None = None,
):
    if session is None:
        return to_login(request)
    found = await benefits(portal, session)
    return page(render, portal, session, found, done=done, resubmitted=resubmitted, withdrawn=withdrawn)


async def offer_of(portal: Portal, session: Session, offer_id: str, found: dict | None = None) -> dict:
    found = found or await benefits(portal, session)
    offer = next((o for o in found["offers"] if o["id"] == offer_id), None)
    if offer is None:  # not this person's, or already applied for
        raise NotFound(f"offer {offer_id} is not open for this person")
    return offer


def offer_page(render: Render, portal: Portal, session: Session, offer, error=None, status=200, typed=None):
    return render(
        "offer.html",
        session,
        status,
        active="applications",
        offer=offer,
        error=error,
        account=masked_account(portal, session),
        unread=0,
        typed=typed or {},
    )


async def typed_in(request: Request, form: dict, lang: str) -> tuple[dict, str | None]:
    """What the person typed into the form's typed fields, checked as the services part will check it."""
    posted = await request.form()
    submitted = {f["name"]: str(posted.get(FIELD_PREFIX + f["name"], "")) for f in form.get("typed_fields") or []}
    try:
        return typed_values(form, submitted), None
    except TypedFieldError as exc:
        label = exc.field["label_en"] if lang == "en" else exc.field["label_ja"]
        return submitted, translate(f"typed_{exc.code}", lang, label=label)


@router.get("/applications/offers/{offer_id}")
async def offer(request: Request, offer_id: str, session: Applicant, portal: PortalDep, render: RenderDep):
    if session is None:
        return to_login(request)
    found = await benefits(portal, session)
    applied = applied_to(found, offer_id)
    if applied is not None:  # the notice's link, followed again after applying: the application's status
        return RedirectResponse(f"/applications#a-{applied['id']}", status_code=303)
    return offer_page(render, portal, session, await offer_of(portal, session, offer_id, found))


def applied_to(found: dict, offer_id: str) -> dict | None:
    """The person's live application for the offer, if any."""
    return next(
        (a for a in found["applications"] if a["offer_id"] == offer_id and a["status"] != Status.WITHDRAWN), None
    )


@router.post("/applications/offers/{offer_id}")
async def apply(
    request: Request,
    offer_id: str,
    session: Applicant,
    portal: PortalDep,
    render: RenderDep,
    csrf: str = Form(...),
    password: str = Form(...),
):
    """Confirming signs exactly what was shown with the signing key (PIN), then submits it through the hub."""
    session = check_form(session, csrf)
    found = await benefits(portal, session)
    applied = applied_to(found, offer_id)
    if applied is not None:  # sent again after an answer that never came (a part restarting): it was received
        return RedirectResponse(f"/applications?done={applied['id']}", status_code=303)
    offer = await offer_of(portal, session, offer_id, found)
    typed, invalid = await typed_in(request, offer["form"], render.lang)
    if invalid:
        return offer_page(render, portal, session, offer, invalid, 422, typed)
    card, proxy = signer(portal, session)
    content = application_content(
        {
            "service_id": offer["service_id"],
            "id": offer["id"],
            "amount_yen": offer["amount_yen"],
            "form": offer["form"],
        },
        typed=typed,
        proxy=proxy,
        reapplies=offer.get("reapplies"),
    )
    payload = {"action": "apply", "offer": offer_id, "typed": typed, "proxy": proxy}
    try:
        created = await submit_signed(portal, session, card, content, password, payload, render.lang)
    except Refused as refused:
        return offer_page(render, portal, session, offer, refused.message, refused.status, typed)
    return RedirectResponse(f"/applications?done={created['application']}", status_code=303)


async def application_of(portal: Portal, session: Session, application_id: str) -> dict:
    found = await benefits(portal, session)
    application = next((a for a in found["applications"] if a["id"] == application_id), None)
    if application is None:  # not this person's (or their principal's)
        raise NotFound(f"application {application_id} is not this person's")
    return application


def resubmit_page(render: Render, portal: Portal, session: Session, application, error=None, status=200, typed=None):
    return render(
        "resubmit.html",
        session,
        status,
        active="applications",
        application=application,
        offer={"form": application["form"]},
        error=error,
        unread=0,
        typed=application.get("typed", {}) if typed is None else typed,
        account=masked_account(portal, session),
    )


@router.get("/applications/{application_id}/resubmit")
async def resubmit_form(
    request: Request, application_id: str, session: Applicant, portal: PortalDep, render: RenderDep
):
    """The returned application as it was, with the staff's reason: what the person typed can be corrected."""
    if session is None:
        return to_login(request)
    application = await application_of(portal, session, application_id)
    if application["status"] not in RESUBMITTABLE:  # resubmitted already, or decided: its status
        return RedirectResponse(f"/applications#a-{application_id}", status_code=303)
    return resubmit_page(render, portal, session, application)


@router.post("/applications/{application_id}/resubmit")
async def resubmit(
    request: Request,
    application_id: str,
    session: Applicant,
    portal: PortalDep,
    render: RenderDep,
    csrf: str = Form(...),
    password: str = Form(...),
):
    """Signs the corrected application, naming the one it replaces, and sends it back for review."""
    session = check_form(session, csrf)
    application = await application_of(portal, session, application_id)
    if application["status"] not in RESUBMITTABLE:
        return render("error.html", session, 409, title=render.t("not_returned_title"), detail=render.t("not_returned"))
    form = application["form"]
    typed, invalid = await typed_in(request, form, render.lang)
    if invalid:
        return resubmit_page(render, portal, session, application, invalid, 422, typed)
    card, proxy = signer(portal, session)
    content = application_content(
        {
            "service_id": application["service_id"],
            "id": application["offer_id"],
            "amount_yen": application["amount_yen"],
            "form": form,
        },
        typed=typed,
        proxy=proxy,
        resubmits=(application_id, application["supersedes"]),
    )
    payload = {"action": "resubmit", "application": application_id, "typed": typed, "proxy": proxy}
    try:
        await submit_signed(portal, session, card, content, password, payload, render.lang)
    except Refused as refused:
        return resubmit_page(render, portal, session, application, refused.message, refused.status, typed)
    return RedirectResponse(f"/applications?resubmitted={application_id}#a-{application_id}", status_code=303)


def withdraw_page(render: Render, session: Session, application, error=None, status=200):
    return render(
        "withdraw.html", session, status, active="applications", application=application, error=error, unread=0
    )


@router.get("/applications/{application_id}/withdraw")
async def withdraw_form(
    request: Request, application_id: str, session: Applicant, portal: PortalDep, render: RenderDep
):
    """The application to withdraw and the signing password: a withdrawal is signed as the application was."""
    if session is None:
        return to_login(request)
    application = await application_of(portal, session, application_id)
    if application["status"] not in WITHDRAWABLE:
        return RedirectResponse(f"/applications#a-{application_id}", status_code=303)
    return withdraw_page(render, session, application)


@router.post("/applications/{application_id}/withdraw")
async def withdraw(
    application_id: str,
    session: Applicant,
    portal: PortalDep,
    render: RenderDep,
    csrf: str = Form(...),
    password: str = Form(...),
):
    session = check_form(session, csrf)
    application = await application_of(portal, session, application_id)
    if application["status"] not in WITHDRAWABLE:
        return render(
            "error.html", session, 409, title=render.t("not_withdrawable_title"), detail=render.t("not_withdrawable")
        )
    card, proxy = signer(portal, session)
    content = withdrawal_content(application, proxy=proxy)
    payload = {"action": "withdraw", "application": application_id, "proxy": proxy}
    try:
        await submit_signed(portal, session, card, content, password, payload, render.lang)
    except Refused as refused:
        return withdraw_page(render, session, application, refused.message, refused.status)
    return RedirectResponse(f"/applications?withdrawn={application_id}#a-{application_id}", status_code=303)


@router.get("/applications/events")
async def events(request: Request, session: Applicant, portal: PortalDep):
    """Server-sent events: every status change of this person's applications, as it happens."""
    if session is None:
        raise NotFound("no session")

    async def stream():
        with portal.status_feed.subscribe(session.subject_ref) as queue:
            yield b": connected\n\n"
            while not await request.is_disconnected():
                try:
                    update = await asyncio.wait_for(queue.get(), timeout=15)
                except TimeoutError:
                    yield b": keep-alive\n\n"
                    continue
                yield b"event: status\ndata: " + orjson.dumps(update) + b"\n\n"

    return StreamingResponse(stream(), media_type="text/event-stream", headers={"cache-control": "no-store"})
