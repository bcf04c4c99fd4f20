"""The staff console: TOTP login, municipality scoping, the queue, decisions under four-eyes, and the figures."""

from __future__ import annotations

import base64
import datetime as dt
import re
import secrets
import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert, select

from publicmesh.console.bootstrap import create_app
from publicmesh.console.staff import StaffDirectory, totp
from publicmesh.services import store
from publicmesh.services.agency import AGENCY

PASSWORD = "correct horse battery"
KITAMI, CHIYODA = "012084", "131016"
T0 = dt.datetime(2025, 4, 1, 0, 0, tzinfo=dt.UTC)


@pytest.fixture
def engine(engine):
    """The services store on each backend (the root conftest's engine), with its tables."""
    assert AGENCY.metadata is store.metadata  # the outbox that applications.change emits to lives here too
    store.metadata.create_all(engine)
    yield engine


@pytest.fixture
def staff(tmp_path, engine):
    directory = StaffDirectory.open(engine, tmp_path / "keys")  # the accounts live in the services store too
    secrets_by_user = {}
    for municipality, username, roles in (
        (KITAMI, "rev.kitami", {"reviewer"}),
        (KITAMI, "rev2.kitami", {"reviewer"}),
        (KITAMI, "appr.kitami", {"approver"}),
        (KITAMI, "both.kitami", {"reviewer", "approver"}),
        (CHIYODA, "rev.chiyoda", {"reviewer", "approver"}),
    ):
        code = directory.create_staff(municipality, username, PASSWORD, roles)
        secrets_by_user[username] = base64.b32decode(code + "=" * (-len(code) % 8))
    directory.secrets = secrets_by_user
    return directory


@pytest.fixture
def app(engine, staff):
    return create_app(engine, staff)


def client(app) -> TestClient:
    return TestClient(app, follow_redirects=False)


def form_csrf(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def log_in(app, staff, username: str, code: str | None = None) -> TestClient:
    browser = client(app)
    page = browser.get("/login")
    answer = browser.post(
        "/login",
        data={
            "csrf": form_csrf(page.text),
            "username": username,
            "password": PASSWORD,
            "totp": code or totp(staff.secrets[username], time.time()),
        },
    )
    assert answer.status_code == 303, answer.text
    return browser


def add_case(
    engine,
    tenant: str,
    *,
    amount: int = 50_000,
    status: str = "in-review",
    four_eyes: bool = False,
    submitted: dt.datetime = T0,
    decided: dt.datetime | None = None,
    form: dict | None = None,
) -> str:
    offer_id, application_id, unit = secrets.token_hex(8), secrets.token_hex(8), secrets.token_hex(8)
    form = form or {
        "title_ja": "子育て応援給付金",
        "title_en": "Child support benefit",
        "fields": [
            {"name": "children", "label_ja": "対象の子の数", "label_en": "Children", "value": 2, "format": "text"},
            {"name": "amount", "label_ja": "支給額", "label_en": "Amount", "value": amount, "format": "yen"},
        ],
        "audit_records": [4711, 4712],
    }
    with engine.begin() as conn:
        conn.execute(
            insert(store.offers).values(
                id=offer_id,
                service_id="child-support",
                unit_key=unit,
                subject="S" + unit,
                tenant=tenant,
                amount_yen=amount,
                form=form,
                version=1,
                offered_at=T0,
            )
        )
        conn.execute(
            insert(store.applications).values(
                id=application_id,
                service_id="child-support",
                unit_key=unit,
                offer_id=offer_id,
                subject="S" + unit,
                tenant=tenant,
                amount_yen=amount,
                status=status,
                channel="tap",
                needs_four_eyes=four_eyes,
                submitted_at=submitted,
                decided_at=decided,
            )
        )
        conn.execute(
            insert(store.history).values(
                application_id=application_id, status="received", actor="resident", at=submitted
            )
        )
    return application_id


def application(engine, application_id: str) -> dict:
    with engine.connect() as conn:
        return dict(
            conn.execute(select(store.applications).where(store.applications.c.id == application_id)).mappings().one()
        )


def history(engine, application_id: str) -> list[dict]:
    with engine.connect() as conn:
        steps = select(store.history).where(store.history.c.application_id == application_id)
        return [dict(r) for r in conn.execute(steps.order_by(store.history.c.id)).mappings()]


def post(browser: TestClient, path: str, **data):
    csrf = form_csrf(browser.get("/").text)
    return browser.post(path, data={"csrf": csrf, **data})


def test_login_needs_the_right_totp(app, staff):
    browser = client(app)
    assert browser.get("/").headers["location"] == "/login"
    page = browser.get("/login")
    wrong = totp(staff.secrets["rev.kitami"], time.time() - 600)  # ten steps old: outside the drift window
    refused = browser.post(
        "/login", data={"csrf": form_csrf(page.text), "username": "rev.kitami", "password": PASSWORD, "totp": wrong}
    )
    assert refused.status_code == 401
    assert "確認コードが違います" in refused.text
    assert "console_session" not in refused.headers.get("set-cookie", "")
    assert browser.get("/queue").status_code == 303

    answer = browser.post(
        "/login",
        data={
            "csrf": form_csrf(refused.text),
            "username": "rev.kitami",
            "password": PASSWORD,
            "totp": totp(staff.secrets["rev.kitami"], time.time()),
        },
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/"
    cookie = answer.headers["set-cookie"]
    assert "console_session=" in cookie and "HttpOnly" in cookie and "samesite=lax" in cookie.lower()
    overview = browser.get("/")
    assert overview.status_code == 200 and "北見市" in overview.text


def test_secure_cookies_use_a_host_prefixed_secure_cookie(engine, staff):
    browser = TestClient(
        create_app(engine, staff, secure_cookies=True), base_url="https://testserver", follow_redirects=False
    )
    page = browser.get("/login")
    answer = browser.post(
        "/login",
        data={
            "csrf": form_csrf(page.text),
            "username": "rev.kitami",
            "password": PASSWORD,
            "totp": totp(staff.secrets["rev.kitami"], time.time()),
        },
    )
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith("__Host-console_session=") and "Secure" in cookie and "Path=/" in cookie
    assert browser.get("/").status_code == 200


def test_logout_ends_the_session(app, staff):
    browser = log_in(app, staff, "rev.kitami")
    assert post(browser, "/logout").status_code == 303
    assert browser.get("/").status_code == 303


def test_post_without_csrf_is_refused(app, staff, engine):
    case = add_case(engine, KITAMI)
    anonymous = client(app)
    anonymous.get("/login")
    assert (
        anonymous.post(
            "/login",
            data={
                "username": "rev.kitami",
                "password": PASSWORD,
                "totp": totp(staff.secrets["rev.kitami"], time.time()),
            },
        ).status_code
        == 403
    )

    browser = log_in(app, staff, "rev.kitami")
    assert browser.post(f"/cases/{case}/reject", data={"reason": "no"}).status_code == 403
    assert browser.post(f"/cases/{case}/reject", data={"reason": "no", "csrf": "forged"}).status_code == 403
    assert browser.post(f"/cases/{case}/approve", data={}).status_code == 403
    assert application(engine, case)["status"] == "in-review"
    assert post(browser, f"/cases/{case}/approve").status_code == 303  # the page's own token works


def test_the_queue_lists_only_own_open_cases_oldest_first(app, staff, engine):
    newer = add_case(engine, KITAMI, amount=1_234_567, submitted=T0 + dt.timedelta(hours=5))
    older = add_case(engine, KITAMI, amount=30_000, status="returned", submitted=T0)
    decided = add_case(engine, KITAMI, status="approved", decided=T0 + dt.timedelta(hours=1))
    elsewhere = add_case(engine, CHIYODA, amount=777_777)

    browser = log_in(app, staff, "rev.kitami")
    page = browser.get("/queue")
    assert page.status_code == 200
    assert older in page.text and newer in page.text
    assert page.text.index(older) < page.text.index(newer)
    assert "¥1,234,567" in page.text and "¥30,000" in page.text
    assert elsewhere not in page.text and "¥777,777" not in page.text
    assert decided not in page.text
    assert 'id="h-decide"' not in browser.get(f"/cases/{decided}").text  # approved: nothing left to decide
    assert 'id="h-decide"' in browser.get(f"/cases/{newer}").text


def test_another_municipality_case_is_404_and_shows_nothing_of_it(app, staff, engine):
    kitami = add_case(engine, KITAMI, amount=654_321)
    browser = log_in(app, staff, "rev.chiyoda")
    page = browser.get(f"/cases/{kitami}")
    assert page.status_code == 404
    assert kitami not in page.text and "654,321" not in page.text and "子育て応援給付金" not in page.text
    for action in ("approve", "reject", "return"):
        assert post(browser, f"/cases/{kitami}/{action}", reason="not yours").status_code == 404
    assert application(engine, kitami)["status"] == "in-review"
    assert len(history(engine, kitami)) == 1
    assert browser.get("/cases/no-such-case").status_code == 404


def test_the_case_shows_the_prefilled_form_history_and_exchange_records(app, staff, engine):
    case = add_case(engine, KITAMI, amount=120_000)
    page = log_in(app, staff, "rev.kitami").get(f"/cases/{case}")
    assert page.status_code == 200
    assert "子育て応援給付金" in page.text and "対象の子の数" in page.text and "¥120,000" in page.text
    assert "記録番号 4711" in page.text and "記録番号 4712" in page.text and "監査ログ" in page.text
    assert "resident" in page.text  # the history's first step
    english = log_in(app, staff, "both.kitami").get(f"/cases/{case}?lang=en")
    assert "Child support benefit" in english.text and "Record 4711" in english.text and "audit log" in english.text


def test_an_amount_revision_shows_the_amounts_before_and_after(app, staff, engine):
    form = {
        "title_ja": "児童手当（額改定）",
        "title_en": "Child allowance (amount revision)",
        "fields": [],
        "audit_records": [],
        "revision": {"previous_yen": 20_000, "revised_yen": 50_000},
    }
    page = log_in(app, staff, "rev.kitami").get(f"/cases/{add_case(engine, KITAMI, amount=30_000, form=form)}").text
    assert "額改定：改定前の額" in page and "¥20,000" in page and "¥50,000" in page and "¥30,000" in page


def test_reject_needs_a_reason_which_lands_in_the_application_and_history(app, staff, engine):
    case = add_case(engine, KITAMI)
    browser = log_in(app, staff, "rev.kitami")
    refused = post(browser, f"/cases/{case}/reject", reason="   ")
    assert refused.status_code == 400 and "理由を入力してください" in refused.text
    assert application(engine, case)["status"] == "in-review"

    done = post(browser, f"/cases/{case}/reject", reason="所得が基準を超えています")
    assert done.status_code == 303 and done.headers["location"] == f"/cases/{case}?done=rejected"
    row = application(engine, case)
    assert row["status"] == "rejected" and row["reason"] == "所得が基準を超えています" and row["decided_at"] is not None
    last = history(engine, case)[-1]
    assert (last["status"], last["actor"], last["reason"]) == ("rejected", "rev.kitami", "所得が基準を超えています")
    with engine.connect() as conn:
        events = conn.execute(select(AGENCY.outbox)).mappings().all()
    assert [e["event_type"] for e in events] == ["application-status"] and "rejected" in events[0]["data"]
    assert "不支給にしました" in browser.get(done.headers["location"]).text


def test_return_to_the_person_needs_a_reason_and_undoes_a_review(app, staff, engine):
    case = add_case(engine, KITAMI, four_eyes=True)
    browser = log_in(app, staff, "rev.kitami")
    assert post(browser, f"/cases/{case}/approve").status_code == 303
    assert post(browser, f"/cases/{case}/return", reason="").status_code == 400
    assert post(browser, f"/cases/{case}/return", reason="口座名義を確認してください").status_code == 303
    row = application(engine, case)
    assert (row["status"], row["reason"], row["reviewed_by"]) == ("returned", "口座名義を確認してください", None)
    assert post(browser, f"/cases/{case}/approve").status_code == 409  # it waits for the person now
    page = browser.get(f"/cases/{case}").text  # only a rejection is left to staff, as the lifecycle has it
    assert f'action="/cases/{case}/reject"' in page
    assert f'action="/cases/{case}/approve"' not in page and f'action="/cases/{case}/return"' not in page


def test_four_eyes_needs_a_second_different_approver(app, staff, engine):
    case = add_case(engine, KITAMI, amount=2_000_000, four_eyes=True)
    reviewer = log_in(app, staff, "rev.kitami")
    first = post(reviewer, f"/cases/{case}/approve")
    assert first.headers["location"] == f"/cases/{case}?done=reviewed"
    row = application(engine, case)
    assert (row["status"], row["reviewed_by"], row["approved_by"]) == ("in-review", "rev.kitami", None)
    assert history(engine, case)[-1]["actor"] == "rev.kitami"

    again = post(reviewer, f"/cases/{case}/approve")
    assert again.status_code == 409 and "同じ申請を承認できません" in again.text
    other_reviewer = post(log_in(app, staff, "rev2.kitami"), f"/cases/{case}/approve")
    assert other_reviewer.status_code == 403 and "承認者の権限が必要です" in other_reviewer.text
    assert application(engine, case)["status"] == "in-review"
    assert 'id="awaiting-second">1<' in reviewer.get("/").text

    approver = log_in(app, staff, "appr.kitami")
    assert post(approver, f"/cases/{case}/approve").headers["location"] == f"/cases/{case}?done=approved"
    row = application(engine, case)
    assert (row["status"], row["reviewed_by"], row["approved_by"]) == ("approved", "rev.kitami", "appr.kitami")
    assert row["decided_at"] is not None
    assert 'id="awaiting-second">0<' in approver.get("/").text


def test_a_staff_member_with_both_roles_still_cannot_approve_alone(app, staff, engine):
    case = add_case(engine, KITAMI, four_eyes=True)
    both = log_in(app, staff, "both.kitami")
    assert post(both, f"/cases/{case}/approve").status_code == 303
    refused = post(both, f"/cases/{case}/approve?lang=en")
    assert refused.status_code == 409 and "a different approver must" in refused.text
    assert application(engine, case)["status"] == "in-review"


def test_without_four_eyes_one_reviewer_approves(app, staff, engine):
    case = add_case(engine, KITAMI, four_eyes=False)
    assert post(log_in(app, staff, "rev.kitami"), f"/cases/{case}/approve").status_code == 303
    row = application(engine, case)
    assert (row["status"], row["approved_by"]) == ("approved", "rev.kitami")


def test_the_dashboard_counts_by_status_and_averages_the_decision_time(app, staff, engine):
    add_case(engine, KITAMI, status="approved", decided=T0 + dt.timedelta(hours=2))
    add_case(engine, KITAMI, status="rejected", decided=T0 + dt.timedelta(hours=4, minutes=30))
    add_case(engine, KITAMI, status="in-review")
    add_case(engine, KITAMI, status="in-review")
    add_case(engine, CHIYODA, status="approved", decided=T0 + dt.timedelta(hours=100))  # not Kitami's figures

    browser = log_in(app, staff, "rev.kitami")
    page = browser.get("/").text

    def count(status: str) -> int:
        return int(
            re.search(rf'data-status="{status}"><th scope="row">[^<]*</th><td class="num">([\d,]+)<', page).group(1)
        )

    assert (count("approved"), count("rejected"), count("in-review"), count("paid")) == (1, 1, 2, 0)
    assert 'id="avg-decision">3時間15分<' in page
    assert 'id="avg-decision">3 h 15 min<' in browser.get("/?lang=en").text


class Notices:
    """Stands in for the decision notice sender: counts how often the console asked it to send."""

    def __init__(self):
        self.runs = 0

    def send_pending(self) -> int:
        self.runs += 1
        return 0


def test_each_decision_but_a_first_review_sends_the_pending_notices(engine, staff):
    notices = Notices()
    app = create_app(engine, staff, notices=notices)
    reviewed, rejected = add_case(engine, KITAMI, four_eyes=True), add_case(engine, KITAMI)
    reviewer = log_in(app, staff, "rev.kitami")
    assert post(reviewer, f"/cases/{reviewed}/approve").headers["location"].endswith("done=reviewed")
    assert notices.runs == 0  # nothing is decided yet, so the person is not told anything
    assert post(reviewer, f"/cases/{rejected}/reject", reason="対象外です").status_code == 303
    assert notices.runs == 1
    assert post(log_in(app, staff, "appr.kitami"), f"/cases/{reviewed}/approve").status_code == 303
    assert notices.runs == 2


def test_health_answers_without_a_login(app):
    assert client(app).get("/healthz").json() == {"status": "ok", "system": "console"}


def test_the_login_page_uses_the_shared_stylesheet_then_its_own(app):
    browser = client(app)
    page = browser.get("/login").text
    assert page.index("/static/design/base.css") < page.index("/static/console.css")
    shared, own = browser.get("/static/design/base.css"), browser.get("/static/console.css")
    assert shared.status_code == own.status_code == 200
    assert ":focus" in shared.text and "textarea" in own.text
