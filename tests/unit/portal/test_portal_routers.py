"""Each portal router alone: its handlers on fake portal parts and a fake session (``app.dependency_overrides``),
with the real templates."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from fastapi import FastAPI
from fastapi.responses import PlainTextResponse
from fastapi.testclient import TestClient
from sqlalchemy import create_engine

from publicmesh.portal import account_pages, application_pages, bootstrap, hub_api, login_pages, pages
from publicmesh.portal.deps import NotFound, current_session, get_portal, get_templates
from publicmesh.portal.sessions import Session
from publicmesh.protocol.signatures import SignatureError

ME, PRINCIPAL, CHILD = "P" * 22, "Q" * 22, "C" * 22


def own_session(**changes) -> Session:
    values = dict(
        id="s1",
        actor_ref=ME,
        actor_name="山田 太郎",
        municipality="012084",
        acting_for=None,
        acting_for_name=None,
        acting_for_municipality=None,
        mandate_id=None,
        csrf="token",
    )
    return Session(**{**values, **changes})


def proxy_session() -> Session:
    return own_session(
        acting_for=PRINCIPAL, acting_for_name="山田 花子", acting_for_municipality="012084", mandate_id="m1"
    )


class FakeMesh:
    def __init__(self):
        self.submitted: list[dict] = []

    async def self_information(self, subject, municipality, keys=None):
        members = [{"subject": CHILD, "relation": "child", "birth_date": "2019-05-01"}]
        return {"household": {"state": "ok", "data": {"relation": "head", "members": members}}}

    async def benefits(self, subject):
        offer = {
            "id": "o1",
            "service_id": "birth-grant",
            "amount_yen": 50000,
            "form": {"title_ja": "出産応援給付金", "title_en": "Birth support grant"},
        }
        application = {
            "id": "a1",
            "offer_id": "o0",
            "service_id": "childcare",
            "title_ja": "子育て給付",
            "title_en": "Childcare grant",
            "amount_yen": 30000,
            "status": "returned",
            "reason": "書類不足",
        }
        return {"offers": [offer], "applications": [application]}

    async def submit(self, subject, payload):
        self.submitted.append(payload)
        return {"application": "a2"}


class FakePeople:
    def __init__(self, accounts_engine, scopes=()):
        self.accounts = accounts_engine
        self.scopes = set(scopes)
        self.logged: list[tuple] = []
        self.proxy_log = SimpleNamespace(record=lambda *a: self.logged.append(a), for_principal=lambda *a: [])
        self.revoked: list[tuple] = []
        wallets = SimpleNamespace(revoke_wallet=lambda *a: self.revoked.append(a))
        self.identity = SimpleNamespace(wallets=wallets)

    def mandate_allows(self, session, scope):
        return scope in self.scopes

    def unread(self, session):
        return 3

    def mandates_held(self, session):
        return []


class FakeSessions:
    def __init__(self):
        self.calls: list[tuple] = []

    def touch(self, session):
        self.calls.append(("touch", session.id))

    def end(self, session_id):
        self.calls.append(("end", session_id))

    def act_for(self, session, *values):
        self.calls.append(("act_for", session.id, *values))


@pytest.fixture
def portal(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'accounts.db'}")
    yield SimpleNamespace(mesh=FakeMesh(), people=FakePeople(engine), sessions=FakeSessions())
    engine.dispose()


def client_for(router, portal, session: Session | None) -> TestClient:
    """An app of one router; the portal's parts and the session are the test's."""
    app = FastAPI()
    app.include_router(router)
    app.add_exception_handler(NotFound, lambda _request, exc: PlainTextResponse(str(exc), 404))
    app.dependency_overrides[get_portal] = lambda: portal
    app.dependency_overrides[get_templates] = bootstrap.templates
    app.dependency_overrides[current_session] = lambda: session
    return TestClient(app, follow_redirects=False)


def test_home_shows_the_person_and_their_children(portal):
    answer = client_for(pages.router, portal, own_session()).get("/?lang=en")
    assert answer.status_code == 200
    assert "山田 太郎" in answer.text and f'name="child" value="{CHILD}"' in answer.text
    assert portal.sessions.calls == [("touch", "s1")] and portal.people.logged == []


def test_home_without_a_session_goes_to_login_in_the_chosen_language(portal):
    answer = client_for(pages.router, portal, None).get("/?lang=en")
    assert answer.status_code == 303 and answer.headers["location"] == "/login?lang=en"


def test_a_mandate_without_the_scope_sees_nothing_and_nothing_is_logged(portal):
    portal.people.scopes = {"applications"}
    answer = client_for(pages.router, portal, proxy_session()).get("/me")
    assert answer.status_code == 404 and "self-information" in answer.text
    assert portal.people.logged == [] and portal.sessions.calls == []


def test_applications_lists_offers_and_statuses(portal):
    answer = client_for(application_pages.router, portal, own_session()).get("/applications?lang=en")
    assert answer.status_code == 200
    assert "Birth support grant" in answer.text and 'href="/applications/offers/o1"' in answer.text
    assert 'href="/applications/a1/resubmit"' in answer.text  # returned: it can be corrected


def test_a_proxy_acting_on_applications_is_logged_for_the_principal(portal):
    portal.people.scopes = {"applications"}
    answer = client_for(application_pages.router, portal, proxy_session()).get("/applications")
    assert answer.status_code == 200
    assert portal.people.logged == [(PRINCIPAL, ME, "m1", "GET /applications")]


def test_applying_with_another_form_token_is_refused_before_anything_is_signed(portal):
    browser = client_for(application_pages.router, portal, own_session())
    answer = browser.post("/applications/offers/o1", data={"csrf": "not-the-token", "password": "x"})
    assert answer.status_code == 404 and portal.mesh.submitted == []


def test_logout_ends_the_session_and_drops_the_cookie(portal):
    answer = client_for(login_pages.router, portal, own_session()).post("/logout", data={"csrf": "token"})
    assert answer.status_code == 303 and answer.headers["location"] == "/login"
    assert ("end", "s1") in portal.sessions.calls and 'portal_session=""' in answer.headers["set-cookie"]


def test_logout_ends_the_session_even_without_the_form_token(portal):
    answer = client_for(login_pages.router, portal, own_session()).post("/logout")
    assert answer.status_code == 303 and ("end", "s1") in portal.sessions.calls


def test_act_for_no_one_goes_back_to_ones_own_account(portal):
    answer = client_for(login_pages.router, portal, proxy_session()).post("/act-for", data={"csrf": "token"})
    assert answer.status_code == 303 and answer.headers["location"] == "/"
    assert portal.sessions.calls == [("act_for", "s1", None, None, None, None)]


def test_revoking_a_wallet_is_the_persons_own_business(portal):
    answer = client_for(account_pages.router, portal, own_session()).post(
        "/settings/wallets/d1/revoke", data={"csrf": "token"}
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/settings"
    assert portal.people.revoked == [(ME, "d1")]


@pytest.mark.parametrize(
    ("session", "csrf"),
    [(proxy_session(), "token"), (own_session(), "not-the-token"), (None, "token")],
    ids=["proxy-even-with-settings-scope", "bad-token", "no-session"],
)
def test_a_settings_form_is_refused(portal, session, csrf):
    portal.people.scopes = {"settings"}
    answer = client_for(account_pages.router, portal, session).post("/settings/wallets/d1/revoke", data={"csrf": csrf})
    assert answer.status_code == 404 and portal.people.revoked == []


def test_the_inbox_needs_a_session_and_a_mandate_covering_notices(portal):
    assert client_for(account_pages.router, portal, None).get("/notices").headers["location"] == "/login"
    assert client_for(account_pages.router, portal, proxy_session()).get("/notices").status_code == 404


class FakeVerifier:
    def __init__(self, valid: bool):
        self.valid = valid

    def verify_request(self, method, path, headers, body):
        if not self.valid:
            raise SignatureError("missing", "no signature")
        return "GOV/digital/hub"


class FakeSigner:
    def sign_response(self, status, body, request_id):
        return {"signature": f"signed {status} {request_id}"}


def hub_client(portal, valid: bool) -> TestClient:
    app = FastAPI()
    app.include_router(hub_api.router)
    app.dependency_overrides[get_portal] = lambda: portal
    app.dependency_overrides[hub_api.get_hub_link] = lambda: hub_api.HubLink(FakeVerifier(valid), FakeSigner())
    return TestClient(app)


def test_the_hub_api_refuses_an_unsigned_call(portal):
    answer = hub_client(portal, valid=False).post("/v1/query", json={"dataset": "signers", "subject": ME})
    assert answer.status_code == 401 and answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["detail"] == "no signature" and answer.json()["type"].endswith(":bad-signature")


def test_the_hub_api_signs_its_answer(portal):
    answer = hub_client(portal, valid=True).post(
        "/v1/query", json={"dataset": "person", "subject": ME}, headers={"mesh-request-id": "r1"}
    )
    assert answer.status_code == 404 and answer.headers["signature"] == "signed 404 r1"


def test_the_hub_reads_what_the_portal_provides(portal):
    found = hub_client(portal, valid=True).get("/v1/datasets").json()
    assert [d["name"] for d in found["datasets"]] == ["public-fund-account", "signers"]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/events", b"not json"),
        ("/v1/events", b"[]"),
        ("/v1/events", b'{"events": [null]}'),
        ("/v1/events", b'{"events": [{"idempotency_key": "k", "type": "move", "subject": {"a": 1}}]}'),
        ("/v1/consents/check", b"false"),
        ("/v1/consents/check", b'{"consent": "c", "recipient": 1, "dataset": "d", "purpose": "p"}'),
        ("/v1/query", b"[1]"),
        ("/v1/query", b'{"dataset": "signers", "subject": ["x"]}'),
        ("/v1/query", b'{"dataset": "signers", "subject": "x", "attributes": ["name"]}'),
        ("/v1/notices", b"not arrow"),
        ("/v1/bulk", b"not arrow"),
    ],
)
def test_a_hub_call_the_portal_cannot_read_is_a_signed_400_problem(portal, path, body):
    """Found by the fuzzer (tests/integration/test_fuzz_parts.py): most of these were 500s."""
    answer = hub_client(portal, valid=True).post(path, content=body, headers={"mesh-request-id": "r2"})
    assert answer.status_code == 400 and answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["type"].endswith(":malformed-request") and answer.headers["signature"] == "signed 400 r2"
