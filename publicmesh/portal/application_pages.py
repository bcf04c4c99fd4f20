"""申請: benefits the person can receive (offers pushed at publishing), one-tap applications signed with the
card's signing key, and the status of each application, live (server-sent events)."""

from __future__ import annotations

import asyncio
import base64

import orjson
from fastapi import FastAPI, Form, Request
from fastapi.responses import RedirectResponse, StreamingResponse

from publicmesh import accounts
from publicmesh.identity import CardError, WrongPin
from publicmesh.portal.i18n import translate
from publicmesh.problems import Problem
from publicmesh.services.applications import STATUSES, application_content


def register(app: FastAPI, portal, require, to_login) -> None:
    render, language, NotFound = app.state.render, app.state.language, app.state.NotFound
    people = portal.identity

    async def benefits(session) -> dict:
        return await portal.mesh.benefits(session.subject_ref)

    def page(request, session, found, **context):
        account = accounts.account_of(people.accounts, session.subject_ref)
        return render(request, "applications.html", session, active="applications", offers=found["offers"],
                      applications=found["applications"], unread=people.unread(session) if not session.acting_for else 0,
                      account=accounts.masked(account) if account else None,
                      status_labels={k: translate(f"status_{k}", language(request)) for k in STATUSES}, **context)

    @app.get("/applications")
    async def applications(request: Request, done: str | None = None):
        session = require(request, "applications")
        if session is None:
            return to_login(request)
        return page(request, session, await benefits(session), done=done)

    async def offer_of(session, offer_id: str, found: dict | None = None) -> dict:
        found = found or await benefits(session)
        offer = next((o for o in found["offers"] if o["id"] == offer_id), None)
        if offer is None:  # not this person's, or already applied for
            raise NotFound(f"offer {offer_id} is not open for this person")
        return offer

    def offer_page(request, session, offer, error=None, status=200):
        account = accounts.account_of(people.accounts, session.subject_ref)
        return render(request, "offer.html", session, status, active="applications", offer=offer, error=error,
                      account=accounts.masked(account) if account else None, unread=0)

    @app.get("/applications/offers/{offer_id}")
    async def offer(request: Request, offer_id: str):
        session = require(request, "applications")
        if session is None:
            return to_login(request)
        found = await benefits(session)
        applied = next((a for a in found["applications"] if a["offer_id"] == offer_id), None)
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
        content = application_content({"service_id": offer["service_id"], "id": offer["id"],
                                       "amount_yen": offer["amount_yen"], "form": offer["form"]})
        card = people.identity.cards.cards_of(session.actor_ref)[0]  # a proxy signs with their own card
        lang = language(request)
        try:
            signature = card.sign_document(content, password)
        except WrongPin as exc:
            return offer_page(request, session, offer, translate("wrong_pin", lang, n=exc.tries_left), 401)
        except CardError as exc:
            return offer_page(request, session, offer, str(exc), 422)
        signed = {"content": base64.b64encode(content).decode(), "signature": base64.b64encode(signature).decode(),
                  "certificate": card.signing_certificate_pem()}
        try:
            created = await portal.mesh.submit(session.subject_ref, {
                "action": "apply", "offer": offer_id, "signed": signed, "proxy": bool(session.acting_for)})
        except Problem as problem:
            return offer_page(request, session, offer, problem.detail, 422)
        return RedirectResponse(f"/applications?done={created['application']}", status_code=303)

    @app.post("/applications/{application_id}/withdraw")
    async def withdraw(request: Request, application_id: str, csrf: str = Form(...)):
        session = require(request, "applications")
        if session is None or csrf != session.csrf:
            raise NotFound("no session or bad form token")
        try:
            await portal.mesh.submit(session.subject_ref, {"action": "withdraw", "application": application_id,
                                                           "proxy": bool(session.acting_for)})
        except Problem:
            raise NotFound(f"application {application_id} is not this person's open application") from None
        return RedirectResponse("/applications", status_code=303)

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
                    except asyncio.TimeoutError:
                        yield b": keep-alive\n\n"
                        continue
                    yield b"event: status\ndata: " + orjson.dumps(update) + b"\n\n"

        return StreamingResponse(stream(), media_type="text/event-stream", headers={"cache-control": "no-store"})
