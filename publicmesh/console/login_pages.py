"""The console's health check, login with password and TOTP, and logout."""

from __future__ import annotations

import hmac
import logging
import secrets

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool

from publicmesh.console import openapi as doc
from publicmesh.console.deps import ConsoleDep, CsrfRefused, Posted, Render, RenderDep, Staff
from publicmesh.console.sessions import ABSOLUTE_S
from publicmesh.console.staff import StaffLoginError

log = logging.getLogger(__name__)
LOGIN_CSRF = "console_login"
router = APIRouter()


def login_page(render: Render, error: str | None = None, status: int = 200, username: str = "") -> HTMLResponse:
    token = secrets.token_urlsafe(24)
    response = render("login.html", None, status, csrf=token, error=error, username=username)
    secure = render.console.secure_cookies
    response.set_cookie(LOGIN_CSRF, token, httponly=True, samesite="strict", secure=secure, max_age=3600)
    return response


@router.get("/login", responses=doc.answers(200))
async def login_form(render: RenderDep):
    return login_page(render)


@router.post("/login", responses=doc.LOGIN_ANSWERS, openapi_extra=doc.LOGIN)
async def login(request: Request, console: ConsoleDep, render: RenderDep):
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    expected = request.cookies.get(LOGIN_CSRF, "")
    if not expected or not hmac.compare_digest(form.get("csrf", "").encode(), expected.encode()):
        raise CsrfRefused()
    username = form.get("username", "").strip()
    try:
        # scrypt is slow on purpose; keep it off the event loop.
        principal = await run_in_threadpool(
            console.staff.staff_login, username, form.get("password", ""), form.get("totp", "").strip()
        )
    except StaffLoginError as exc:
        log.info("console: staff login refused for %r (%s)", username, exc.reason)
        key = "login_locked" if exc.reason == "locked" else "login_failed"
        return login_page(render, render.t(key), 401, username)
    session = console.sessions.start(principal)
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(
        console.cookie,
        session.id,
        httponly=True,
        samesite="lax",
        secure=console.secure_cookies,
        path="/",
        max_age=ABSOLUTE_S,
    )
    response.delete_cookie(LOGIN_CSRF)
    return response


@router.post("/logout", responses=doc.answers(303, 403), openapi_extra=doc.LOGOUT)
async def logout(session: Staff, _form: Posted, console: ConsoleDep):
    console.sessions.end(session.id)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(console.cookie, path="/")
    return response
