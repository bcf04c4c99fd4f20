"""The portal's login forms carry a token bound to the browser's pre-login cookie and to the challenge, posts from
another site are refused with a 403 problem, and logout ends the session on the server."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine

from publicmesh.identity import CardError, LoginError
from publicmesh.portal import bootstrap
from publicmesh.portal.deps import COOKIE
from publicmesh.portal.login_pages import LOGIN_COOKIE, login_token
from publicmesh.portal.sessions import SessionStore


class FakeIdentity:
    """Counts what reaches the card and the login check; both refuse, so a 401 means the token was accepted."""

    def __init__(self):
        self.reached: list[str] = []
        self.issued = 0
        self.login = SimpleNamespace(new_challenge=self.new_challenge, verify_login=self.verify_login)
        self.cards = SimpleNamespace(card=self.card)

    def new_challenge(self):
        self.issued += 1
        return SimpleNamespace(id=f"ch{self.issued}", nonce=b"0123456789abcdef")

    def card(self, card_id):
        self.reached.append(f"card {card_id}")
        raise CardError("no such card")

    def verify_login(self, challenge, certificate, signature):
        self.reached.append(f"wallet {challenge}")
        raise LoginError("bad signature", reason="bad-signature")


@pytest.fixture
def portal(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'identity.db'}")
    identity = FakeIdentity()
    people = SimpleNamespace(identity=identity, mandate_in_force=lambda session: True)
    yield SimpleNamespace(settings=SimpleNamespace(data_dir=tmp_path), people=people, sessions=SessionStore(engine))
    engine.dispose()


@pytest.fixture
def browser(portal) -> TestClient:
    app = bootstrap.create_app(portal, bootstrap.templates(), hub_link=SimpleNamespace())
    return TestClient(app, follow_redirects=False)


def login_form(browser: TestClient) -> dict:
    page = browser.get("/login")
    assert page.status_code == 200
    found = dict(re.findall(r'name="(challenge|csrf)" value="([^"]+)"', page.text))
    return {"card": "card-1", "pin": "1234", **found}


def test_the_login_page_sets_a_strict_cookie_and_a_token_bound_to_it_and_the_challenge(browser):
    page = browser.get("/login")
    cookie = page.headers["set-cookie"]
    assert cookie.startswith(f"{LOGIN_COOKIE}=") and "HttpOnly" in cookie and "samesite=strict" in cookie.lower()
    key = browser.cookies[LOGIN_COOKIE]
    challenge = re.search(r'name="challenge" value="([^"]+)"', page.text).group(1)
    assert f'name="csrf" value="{login_token(key, challenge)}"' in page.text
    again = browser.get("/login")  # the same browser keeps its key
    assert "set-cookie" not in again.headers


def test_a_login_post_without_the_token_is_refused_before_the_card_is_used(browser, portal):
    form = login_form(browser)
    assert browser.post("/login", data={**form, "csrf": ""}).status_code == 403
    assert browser.post("/login", data={**form, "csrf": "0" * 64}).status_code == 403
    other = form | {"challenge": "ch-another"}  # the token is for one challenge only
    assert browser.post("/login", data=other).status_code == 403
    assert portal.people.identity.reached == []
    answer = browser.post("/login", data=form)
    assert answer.status_code == 401 and portal.people.identity.reached == ["card card-1"]


def test_another_browsers_token_does_not_log_this_one_in(browser, portal):
    form = login_form(browser)  # the attacker's own page, token and challenge
    victim = TestClient(browser.app, follow_redirects=False)
    victim.get("/login")  # the victim has a pre-login cookie of their own
    assert victim.post("/login", data=form).status_code == 403
    fresh = TestClient(browser.app, follow_redirects=False)  # or none at all
    assert fresh.post("/login", data=form).status_code == 403
    assert portal.people.identity.reached == []


def test_the_wallet_login_needs_the_token_of_its_challenge(browser, portal):
    challenge = browser.get("/login/challenge").json()
    body = {"challenge": challenge["challenge_id"], "certificate": "pem", "signature": "AAAA"}
    refused = browser.post("/login/wallet", json=body)
    assert refused.status_code == 403 and portal.people.identity.reached == []
    answer = browser.post("/login/wallet", json={**body, "csrf": challenge["csrf"]})
    assert answer.status_code == 401 and portal.people.identity.reached == [f"wallet {challenge['challenge_id']}"]


@pytest.mark.parametrize(
    "headers",
    [
        {"origin": "https://evil.example"},
        {"origin": "null"},
        {"origin": "http://testserver.evil.example"},
        {"referer": "https://evil.example/form.html"},
    ],
)
def test_a_cross_origin_post_is_refused_with_a_problem(browser, portal, headers):
    form = login_form(browser)
    answer = browser.post("/login", data=form, headers=headers)
    assert answer.status_code == 403 and answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["type"] == "urn:publicmesh:problem:cross-origin"
    assert portal.people.identity.reached == []


def test_a_same_origin_post_passes(browser, portal):
    form = login_form(browser)
    answer = browser.post("/login", data=form, headers={"origin": "http://testserver", "referer": "http://x.example/"})
    assert answer.status_code == 401 and portal.people.identity.reached == ["card card-1"]
    answer = browser.post("/login", data=login_form(browser), headers={"referer": "http://testserver/login"})
    assert answer.status_code == 401


def test_logout_ends_the_session_on_the_server(browser, portal):
    session = portal.sessions.create("ref-1", "山田 太郎", "012084")
    browser.cookies.set(COOKIE, session.id)
    assert browser.post("/logout", headers={"origin": "https://evil.example"}).status_code == 403
    assert portal.sessions.get(session.id) is not None  # another site cannot log the person out
    answer = browser.post("/logout", headers={"origin": "http://testserver"})
    assert answer.status_code == 303 and answer.headers["location"] == "/login"
    assert portal.sessions.get(session.id) is None
    # the old id, replayed with its form token, no longer works
    replay = TestClient(browser.app, follow_redirects=False, cookies={COOKIE: session.id})
    assert replay.post("/act-for", data={"csrf": session.csrf}).status_code == 404
