"""申請: benefits the person can receive (offers pushed at publishing), one-tap applications signed with the
card's signing key, returned applications fixed and signed again (再提出), and the status of each application,
live (server-sent events)."""

from __future__ import annotations

import asyncio
import base64
import logging

import orjson
from fastapi import FastAPI, Form, Request
from fastapi.responses import RedirectResponse, StreamingResponse

from publicmesh import accounts
from publicmesh.applications.content import application_content, withdrawal_content
from publicmesh.applications.forms import TypedFieldError, typed_values
from publicmesh.applications.lifecycle import STATUSES, WITHDRAWABLE
from publicmesh.identity import CardError, WrongPin, basic_information, load_certificate
from publicmesh.identity.certificates import serial_hex
from publicmesh.identity.mandates import reference as mandate_reference
from publicmesh.portal.i18n import translate
from publicmesh.problems import Problem

FIELD_PREFIX = "field-"  # the input name of a typed field: field-<name>
log = logging.getLogger(__name__)


class Refused(Exception):
    """A signed submission that did not go through: what to tell the person on the form, and the HTTP status."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.message, self.status = message, status


def register(app: FastAPI, portal, require, to_login) -> None:
    render, language, NotFound = app.state.render, app.state.language, app.state.NotFound
    people = portal.identity

    async def benefits(session) -> dict:
        return await portal.mesh.benefits(session.subject_ref)

    def page(request, session, found, **context):
        account = accounts.account_of(people.accounts, session.subject_ref)
        return render(
            request,
            "applications.html",
            session,
            active="applications",
            offers=found["offers"],
            applications=found["applications"],
            unread=people.unread(session) if not session.acting_for else 0,
            account=accounts.masked(account) if account else None,
            status_labels={k: translate(f"status_{k}", language(request)) for k in STATUSES},
            withdrawable=WITHDRAWABLE,
            **context,
        )

    @app.get("/applications")
    async def applications(
        request: Request, done: str | None = None, resubmitted: str | None = None, withdrawn: str | None = None
    ):
        session = require(request, "applications")
        if session is None:
            return to_login(request)
        return page(request, session, await benefits(session), done=done, resubmitted=resubmitted, withdrawn=withdrawn)

    async def offer_of(session, offer_id: str, found: dict | None = None) -> dict:
        found = found or await benefits(session)
        offer = next((o for o in found["offers"] if o["id"] == offer_id), None)
        if offer is None:  # not this person's, or already applied for
            raise NotFound(f"offer {offer_id} is not open for this person")
        return offer

    def offer_page(request, session, offer, error=None, status=200, typed=None):
        account = accounts.account_of(people.accounts, session.subject_ref)
        return render(
            request,
            "offer.html",
            session,
            status,
            active="applications",
            offer=offer,
            error=error,
            account=accounts.masked(account) if account else None,
            unread=0,
            typed=typed or {},
        )

    async def typed_in(request: Request, form: dict) -> tuple[dict, str | None]:
        """What the person typed into the form's typed fields, checked as the services part will check it."""
        posted = await request.form()
        submitted = {f["name"]: str(posted.get(FIELD_PREFIX + f["name"], "")) for f in form.get("typed_fields") or []}
        try:
            return typed_values(form, submitted), None
        except TypedFieldError as exc:
            lang = language(request)
            label = exc.field["label_en"] if lang == "en" else exc.field["label_ja"]
            return submitted, translate(f"typed_{exc.code}", lang, label=label)

    def signer(session):
        """The card that signs: the person's own (a proxy's own, never the principal's); and for a proxy, what the
        signed content names: the proxy, as their signing certificate does, and the mandate they act under."""
        card = people.identity.cards.cards_of(session.actor_ref)[0]
        if not session.acting_for:
            return card, None
        certificate = load_certificate(card.signing_certificate_pem())
        try:
            name = basic_information(certificate).name
        except ValueError:
            name = session.actor_name
        return card, {
            "name": name,
            "certificate": serial_hex(certificate.serial_number),
            "mandate": mandate_reference(session.mandate_id or ""),
        }

    def sign(card, content: bytes, password: str) -> dict:
        signature = card.sign_document(content, password)
        return {
            "content": base64.b64encode(content).decode(),
            "signature": base64.b64encode(signature).decode(),
            "certificate": card.signing_certificate_pem(),
        }

    async def submit_signed(request, session, card, content: bytes, password: str, payload: dict) -> dict:
        """Signs ``content`` with the card's signing key and submits it through the hub with ``payload``; a wrong
        password (401), a locked card or the services part's refusal (422) raise Refused, to show on the form."""
        try:
            signed = sign(card, content, password)
        except WrongPin as exc:
            raise Refused(translate("wrong_pin", language(request), n=exc.tries_left), 401) from None
        except CardError as exc:
            log.warning("refused: %s's card did not sign (%s)", session.actor_ref, exc)
            raise Refused(str(exc), 422) from None
        try:
            return await portal.mesh.submit(session.subject_ref, {**payload, "signed": signed})
        except Problem as problem:
            log.warning(
                "refused: the submission of %s for %s (%s)", session.actor_ref, session.subject_ref, problem.detail
            )
            raise Refused(problem.detail, 422) from None

    @app.get("/applications/offers/{offer_id}")
    async def offer(request: Request, offer_id: str):
        session = require(request, "applications")
        if session is None:
            return to_login(request)
        found = await benefits(session)
        applied = next(
            (a for a in found["applications"] if a["offer_id"] == offer_id and a["status"] != "withdrawn"), None
        )
        if applied is not None:  # the notice's link, followed again after applying: the application's status
            return RedirectResponse(f"/applications#a-{applied['id']}", status_code=303)
        return offer_page(request, session, await offer_of(session, offer_id, found))

    @app.post("/applications/offers/{offer_id}")
    async def apply(request: Request, offer_id: str, csrf: str = Form(...), password: str = Form(...)):
        """Confirming signs exactly what was shown with the signing key (PIN), then submits it through the hub."""
        session = require(request, "applications")
        if session is None or csrf != session.csrf:
            raise NotFound("no session or bad form token")
        offer = await offer_of(session, offer_id)
        typed, invalid = await typed_in(request, offer["form"])
        if invalid:
            return offer_page(request, session, offer, invalid, 422, typed)
        card, proxy = signer(session)
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
        try:
            created = await submit_signed(
                request,
                session,
                card,
                content,
                password,
                {"action": "apply", "offer": offer_id, "typed": typed, "proxy": proxy},
            )
        except Refused as refused:
            return offer_page(request, session, offer, refused.message, refused.status, typed)
        return RedirectResponse(f"/applications?done={created['application']}", status_code=303)

    async def application_of(session, application_id: str) -> dict:
        found = await benefits(session)
        application = next((a for a in found["applications"] if a["id"] == application_id), None)
        if application is None:  # not this person's (or their principal's)
            raise NotFound(f"application {application_id} is not this person's")
        return application

    def resubmit_page(request, session, application, error=None, status=200, typed=None):
        account = accounts.account_of(people.accounts, session.subject_ref)
        return render(
            request,
            "resubmit.html",
            session,
            status,
            active="applications",
            application=application,
            offer={"form": application["form"]},
            error=error,
            unread=0,
            typed=application.get("typed", {}) if typed is None else typed,
            account=accounts.masked(account) if account else None,
        )

    @app.get("/applications/{application_id}/resubmit")
    async def resubmit_form(request: Request, application_id: str):
        """The returned application as it was, with the staff's reason: what the person typed can be corrected."""
        session = require(request, "applications")
        if session is None:
            return to_login(request)
        application = await application_of(session, application_id)
        if application["status"] != "returned":  # resubmitted already, or decided: its status
            return RedirectResponse(f"/applications#a-{application_id}", status_code=303)
        return resubmit_page(request, session, application)

    @app.post("/applications/{application_id}/resubmit")
    async def resubmit(request: Request, application_id: str, csrf: str = Form(...), password: str = Form(...)):
        """Signs the corrected application, naming the one it replaces, and sends it back for review."""
        session = require(request, "applications")
        if session is None or csrf != session.csrf:
            raise NotFound("no session or bad form token")
        application = await application_of(session, application_id)
        lang = language(request)
        if application["status"] != "returned":
            return render(
                request,
                "error.html",
                session,
                409,
                title=translate("not_returned_title", lang),
                detail=translate("not_returned", lang),
            )
        form = application["form"]
        typed, invalid = await typed_in(request, form)
        if invalid:
            return resubmit_page(request, session, application, invalid, 422, typed)
        card, proxy = signer(session)
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
        try:
            await submit_signed(
                request,
                session,
                card,
                content,
                password,
                {"action": "resubmit", "application": application_id, "typed": typed, "proxy": proxy},
            )
        except Refused as refused:
            return resubmit_page(request, session, application, refused.message, refused.status, typed)
        return RedirectResponse(f"/applications?resubmitted={application_id}#a-{application_id}", status_code=303)

    def withdraw_page(request, session, application, error=None, status=200):
        return render(
            request,
            "withdraw.html",
            session,
            status,
            active="applications",
            application=application,
            error=error,
            unread=0,
        )

    @app.get("/applications/{application_id}/withdraw")
    async def withdraw_form(request: Request, application_id: str):
        """The application to withdraw and the signing password: a withdrawal is signed as the application was."""
        session = require(request, "applications")
        if session is None:
            return to_login(request)
        application = await application_of(session, application_id)
        if application["status"] not in WITHDRAWABLE:
            return RedirectResponse(f"/applications#a-{application_id}", status_code=303)
        return withdraw_page(request, session, application)

    @app.post("/applications/{application_id}/withdraw")
    async def withdraw(request: Request, application_id: str, csrf: str = Form(...), password: str = Form(...)):
        session = require(request, "applications")
        if session is None or csrf != session.csrf:
            raise NotFound("no session or bad form token")
        application = await application_of(session, application_id)
        lang = language(request)
        if application["status"] not in WITHDRAWABLE:
            return render(
                request,
                "error.html",
                session,
                409,
                title=translate("not_withdrawable_title", lang),
                detail=translate("not_withdrawable", lang),
            )
        card, proxy = signer(session)
        try:
            await submit_signed(
                request,
                session,
                card,
                withdrawal_content(application, proxy=proxy),
                password,
                {"action": "withdraw", "application": application_id, "proxy": proxy},
            )
        except Refused as refused:
            return withdraw_page(request, session, application, refused.message, refused.status)
        return RedirectResponse(f"/applications?withdrawn={application_id}#a-{application_id}", status_code=303)

    @app.get("/applications/events")
    async def events(request: Request):
        """Server-sent events: every status change of this person's applications, as it happens."""
        session = require(request, "applications")
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
