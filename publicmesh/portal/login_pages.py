"""Login (the card, simulated for demo cards, or a wallet's key), logout, and acting for a principal."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse
from sqlalchemy import select

from publicmesh.identity import CardError, CardLocked, IdentityError, LoginError, WrongPin
from publicmesh.identity.store import challenges
from publicmesh.portal.core import Portal
from publicmesh.portal.deps import COOKIE, CurrentSession, NotFound, PortalDep, Render, RenderDep, check_form
from publicmesh.portal.people import People
from publicmesh.portal.proxies import minor_children
from publicmesh.problems import Problem

router = APIRouter()
# Before login there is no session to hold a form token: a random value in a cookie that only this site's pages
# send (HttpOnly, SameSite=Strict, path /login) keys an HMAC of the login challenge, and that HMAC is the form's
# token. Another site can neither read the cookie nor compute the token, so it cannot log a browser in.
LOGIN_COOKIE = "portal_login"
LOGIN_COOKIE_AGE = 1800


def login_token(key: str, challenge_id: str) -> str:
    """The login form's token: bound to this browser's pre-login cookie and to one challenge."""
    return hmac.new(key.encode(), f"login:{challenge_id}".encode(), hashlib.sha256).hexdigest()


def login_token_valid(request: Request, challenge_id: str, token: str) -> bool:
    key = request.cookies.get(LOGIN_COOKIE)
    return bool(key and token) and hmac.compare_digest(login_token(key, challenge_id), token)


def _login_key(request: Request) -> tuple[str, bool]:
    """This browser's pre-login key, and whether it is new (to be set as a cookie)."""
    key = request.cookies.get(LOGIN_COOKIE)
    return (key, False) if key else (secrets.token_urlsafe(32), True)


def _set_login_cookie(response: Response, key: str) -> None:
    response.set_cookie(LOGIN_COOKIE, key, httponly=True, samesite="strict", max_age=LOGIN_COOKIE_AGE, path="/login")


def demo_cards(portal: Portal) -> list[dict]:
    path = portal.settings.data_dir / "demo-cards.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else []


def start_session(portal: Portal, person_ref: str) -> RedirectResponse:
    holder = portal.people.directory.get(person_ref)
    if holder is None:
        raise LoginError("no card holder record", reason="unknown-card")
    session = portal.sessions.create(person_ref, holder.display_name, holder.municipality)
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(COOKIE, session.id, httponly=True, samesite="lax", max_age=1800)
    response.delete_cookie(LOGIN_COOKIE, path="/login")
    return response


def login_page(render: Render, portal: Portal, error: str | None = None, chosen: str | None = None, status: int = 200):
    challenge = portal.people.identity.login.new_challenge()
    key, new = _login_key(render.request)
    response = render(
        "login.html",
        None,
        status,
        challenge=challenge.id,
        csrf=login_token(key, challenge.id),
        cards=demo_cards(portal),
        chosen=chosen,
        error=error,
    )
    if new:
        _set_login_cookie(response, key)
    return response


@router.get("/login")
async def login_form(portal: PortalDep, render: RenderDep):
    return login_page(render, portal)


@router.post("/login")
async def login_with_card(
    request: Request,
    portal: PortalDep,
    render: RenderDep,
    card: str = Form(...),
    pin: str = Form(...),
    challenge: str = Form(...),
    csrf: str = Form(""),
):
    """The card reader is simulated for demo cards: the card signs the challenge after its PIN."""
    if not login_token_valid(request, challenge, csrf):
        return login_page(render, portal, render.t("login_expired"), card, 403)
    identity = portal.people.identity
    try:
        software_card = identity.cards.card(card)
        signature = software_card.sign_auth(_nonce(portal.people, challenge), pin)
        person_ref = identity.login.verify_login(challenge, software_card.auth_certificate_pem(), signature)
    except WrongPin as exc:
        return login_page(render, portal, render.t("wrong_pin", n=exc.tries_left), card, 401)
    except CardLocked:
        return login_page(render, portal, render.t("card_locked"), card, 423)
    except (CardError, LoginError, IdentityError, LookupError, KeyError):
        return login_page(render, portal, render.t("login_failed"), card, 401)
    return start_session(portal, person_ref)


@router.get("/login/challenge")
async def challenge_for_wallet(request: Request, portal: PortalDep):
    challenge = portal.people.identity.login.new_challenge()
    key, new = _login_key(request)
    response = JSONResponse(
        {
            "challenge_id": challenge.id,
            "nonce": base64.b64encode(challenge.nonce).decode(),
            "csrf": login_token(key, challenge.id),
        }
    )
    if new:
        _set_login_cookie(response, key)
    return response


def _wallet_login(body: bytes) -> dict | None:
    """The wallet's JSON object, or None when it is not one of strings (a missing one is a failed login)."""
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):  # not UTF-8, not JSON, or nested past the parser's depth
        return None
    if not isinstance(doc, dict):
        return None
    values = [doc.get(k, "") for k in ("challenge", "certificate", "signature")]
    # a NUL is refused here: PostgreSQL's text cannot hold one
    return doc if all(isinstance(v, str) and "\x00" not in v for v in values) else None


@router.post("/login/wallet")
async def login_with_wallet(request: Request, portal: PortalDep, render: RenderDep):
    doc = _wallet_login(await request.body())
    if doc is None:
        problem = Problem("malformed-request", "a JSON object of strings: challenge, certificate, signature")
        return problem.response(request.url.path, render.lang)
    if not login_token_valid(request, str(doc.get("challenge", "")), str(doc.get("csrf", ""))):
        return JSONResponse({"detail": render.t("login_expired"), "reason": "csrf"}, status_code=403)
    try:
        person_ref = portal.people.identity.login.verify_login(
            doc["challenge"], doc["certificate"], base64.b64decode(doc["signature"])
        )
    except (LoginError, IdentityError, KeyError, ValueError) as exc:
        return JSONResponse(
            {"detail": render.t("login_failed"), "reason": getattr(exc, "reason", None)},
            status_code=401,
        )
    return start_session(portal, person_ref)


@router.post("/logout")
async def logout(session: CurrentSession, portal: PortalDep):
    # Ended on the server whatever the form holds: a cookie kept or stolen must not outlive the logout. Another
    # site cannot log a browser out (the portal refuses cross-origin posts).
    if session:
        portal.sessions.end(session.id)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE)
    return response


@router.post("/act-for")
async def act_for(
    session: CurrentSession,
    portal: PortalDep,
    render: RenderDep,
    csrf: str = Form(...),
    mandate: str = Form(""),
    child: str = Form(""),
):
    session = check_form(session, csrf)
    if child:  # statutory: re-established from the registry's household, never taken from the form
        household = await portal.mesh.self_information(session.actor_ref, session.municipality, keys=("household",))
        minors = {c["subject"]: c for c in minor_children(household["household"], session.actor_ref)}
        if child not in minors:
            raise NotFound("not a minor child in this person's household")
        name = render.t("child_of_age", age=minors[child]["age"])
        portal.sessions.act_for(session, child, name, session.municipality, f"statutory:{session.actor_ref}:{child}")
        return RedirectResponse("/", status_code=303)
    if not mandate:
        portal.sessions.act_for(session, None, None, None, None)
        return RedirectResponse("/", status_code=303)
    held = portal.people.identity.mandates.get(mandate)
    if held is None or held.proxy_ref != session.actor_ref or not held.permits(next(iter(held.scopes))):
        raise NotFound(f"mandate {mandate} is not held by this person")
    holder = portal.people.directory.get(held.principal_ref)
    portal.sessions.act_for(session, held.principal_ref, holder.display_name, holder.municipality, held.id)
    return RedirectResponse("/", status_code=303)


def _nonce(people: People, challenge_id: str) -> bytes:
    with people.identity.engine.connect() as conn:
        row = conn.execute(select(challenges.c.nonce).where(challenges.c.challenge_id == challenge_id)).first()
    if row is None:
        raise LoginError("unknown challenge", reason="expired-challenge")
    return bytes(row.nonce)
