"""The staff console as a running part: staff log in over HTTP with a password and a TOTP code, see only their
municipality's queue, open a case with the exchange records that fetched its data, and decide it; the person then
sees the status and the reason in the portal and finds a decision notice in the inbox. Four-eyes above the
definition's threshold: a reviewer alone cannot approve."""

from __future__ import annotations

import base64
import json
import re
import threading
import time

import httpx
import pytest
from service_variants import NAME, variant
from sqlalchemy import select

from publicmesh.audit.schema import records
from publicmesh.console.staff import totp
from publicmesh.services.operator import publish_file
from publicmesh.storage import engine_for

SERVICE = "console-test-benefit"
TITLE = "職員審査の試験給付金"
REJECTED_TITLE = "職員審査の試験給付金を支給できません"
REASON = "世帯の所得が支給の基準を超えています（令和7年度課税台帳）"
THRESHOLD, SMALL, LARGE = 500_000, 50_000, 600_000
SIGNING_PASSWORD = "ABC123"  # the demo cards' signing password


def _our_cards(mesh) -> tuple[dict, dict]:
    """Two heads of household whose cards no other test locks or applies with: test_portal_access uses the
    first four and locks the last; test_services applies with the first head among the rest."""
    cards = json.loads((mesh.settings.data_dir / "demo-cards.json").read_text(encoding="utf-8"))
    heads = [c for c in cards[4:-1] if c["relation"] in ("head", "single")]
    if len(heads) < 3:
        pytest.fail("the demo cards hold fewer than three heads of household besides those other tests use")
    return heads[-2], heads[-1]


def _name(card: dict) -> str:
    return card["label"].split("（")[0]  # "永田 正（ナガタ タダシ）" → "永田 正"


@pytest.fixture(scope="module")
def cards(mesh):
    rejected, four_eyes = _our_cards(mesh)
    return {"rejected": rejected, "four_eyes": four_eyes}


@pytest.fixture(scope="module")
def published(mesh, cards, tmp_path_factory):
    """A benefit for exactly our two households, decided by staff (not the rules): one under the four-eyes
    threshold, one over it."""
    path = variant(
        tmp_path_factory.mktemp("definitions"),
        SERVICE,
        {"ja": TITLE, "en": "Staff review test benefit"},
        names=[_name(cards["rejected"]), _name(cards["four_eyes"])],
        amount=f'where({NAME} == "{_name(cards["four_eyes"])}", {LARGE}, {SMALL})',
        workflow={"automatic": False, "review_over": THRESHOLD},
        notice_titles={"rejected": {"ja": REJECTED_TITLE, "en": "Your test benefit was not approved"}},
    )
    summary = publish_file(mesh.settings, path)
    assert summary.eligible >= 2, summary.as_dict()
    return summary


def _apply(client: httpx.Client) -> str:
    """One tap on our service's offer, signed with the card; returns the application id."""
    listing = client.get("/applications").text
    offer_id = re.search(rf'{TITLE}</strong>.*?href="/applications/offers/([0-9a-f]+)"', listing, re.S).group(1)
    form = client.get(f"/applications/offers/{offer_id}").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', form).group(1)
    done = client.post(f"/applications/offers/{offer_id}", data={"csrf": csrf, "password": SIGNING_PASSWORD})
    assert done.status_code == 303, done.text
    return done.headers["location"].split("done=")[1]


@pytest.fixture(scope="module")
def applied(mesh, cards, published):
    people = {kind: mesh.portal_login(card["card_id"]) for kind, card in cards.items()}
    ids = {kind: _apply(client) for kind, client in people.items()}
    yield {"people": people, "ids": ids}
    for client in people.values():
        client.close()


def _staff_login(mesh, username: str) -> httpx.Client:
    """Over HTTP as a person would: the password from the demo accounts file, the code from the TOTP secret."""
    accounts = {a["username"]: a for a in json.loads((mesh.settings.data_dir / "demo-staff.json").read_text("utf-8"))}
    account = accounts[username]
    secret = base64.b32decode(account["totp_secret"] + "=" * (-len(account["totp_secret"]) % 8))
    client = httpx.Client(base_url=mesh.url("console"), follow_redirects=False, timeout=30)
    csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text).group(1)
    answer = client.post(
        "/login",
        data={"csrf": csrf, "username": username, "password": account["password"], "totp": totp(secret, time.time())},
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/", answer.text
    return client


@pytest.fixture(scope="module")
def staff(mesh):
    """One session each: a TOTP code is good once, so nobody logs in twice within 30 seconds."""
    clients = {name: _staff_login(mesh, name) for name in ("reviewer.012084", "approver.012084", "reviewer.131016")}
    yield clients
    for client in clients.values():
        client.close()


def _decide(client: httpx.Client, application_id: str, action: str, **form) -> httpx.Response:
    csrf = re.search(r'name="csrf" value="([^"]+)"', client.get(f"/cases/{application_id}").text).group(1)
    return client.post(f"/cases/{application_id}/{action}", data={"csrf": csrf, **form})


def test_a_wrong_code_does_not_log_in(mesh):
    accounts = json.loads((mesh.settings.data_dir / "demo-staff.json").read_text("utf-8"))
    account = next(a for a in accounts if a["username"] == "approver.131016")
    client = httpx.Client(base_url=mesh.url("console"), follow_redirects=False, timeout=30)
    csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text).group(1)
    answer = client.post(
        "/login",
        data={"csrf": csrf, "username": account["username"], "password": account["password"], "totp": "000000"},
    )
    assert answer.status_code == 401 and client.get("/queue").status_code == 303  # back to /login


def test_staff_see_only_their_municipality_and_the_exchange_records_behind_a_case(mesh, cards, applied, staff):
    ids = applied["ids"]
    kitami = staff["reviewer.012084"].get("/queue").text
    assert all(f'id="a-{i}"' in kitami for i in ids.values())
    chiyoda = staff["reviewer.131016"]
    assert not any(i in chiyoda.get("/queue").text for i in ids.values())
    assert chiyoda.get(f"/cases/{ids['rejected']}").status_code == 404  # another municipality's: as good as none

    page = staff["reviewer.012084"].get(f"/cases/{ids['rejected']}").text
    assert _name(cards["rejected"]) in page and "¥50,000" in page  # the pre-filled form
    positions = [int(n) for n in re.findall(r"記録番号 (\d+)", page)]
    assert positions, "the case names the exchange records that fetched its data"
    engine = engine_for("audit", mesh.settings)
    with engine.connect() as conn:
        found = conn.execute(
            select(records.c.consumer, records.c.purpose).where(records.c.position.in_(positions))
        ).all()
    engine.dispose()
    assert len(found) == len(positions)
    assert set(found) == {("GOV/digital/services", f"specified-public-benefit:{SERVICE}")}


def _status_events(client: httpx.Client, application_id: str, status: str, seen: list, ready: threading.Event) -> None:
    """Reads the portal's live status stream until this application's event of ``status`` arrives (its earlier
    events, such as the submission's, may still be on their way through the hub)."""
    with client.stream("GET", "/applications/events", timeout=httpx.Timeout(30, read=40)) as events:
        for line in events.iter_lines():
            ready.set()
            if line.startswith("data: "):
                update = json.loads(line[len("data: ") :])
                if update.get("application") == application_id and update.get("status") == status:
                    seen.append(update)
                    return


def test_a_rejection_with_a_reason_reaches_the_person(mesh, applied, staff):
    application_id, person = applied["ids"]["rejected"], applied["people"]["rejected"]
    seen, ready = [], threading.Event()
    listener = threading.Thread(
        target=_status_events, args=(person, application_id, "rejected", seen, ready), daemon=True
    )
    listener.start()
    assert ready.wait(10)

    refused = _decide(staff["reviewer.012084"], application_id, "reject", reason="  ")
    assert refused.status_code == 400  # a rejection needs a reason the person can read
    done = _decide(staff["reviewer.012084"], application_id, "reject", reason=REASON)
    assert done.status_code == 303 and done.headers["location"].endswith("done=rejected")

    page = person.get("/applications").text
    row = re.search(rf'<tr id="a-{application_id}">.*?</tr>', page, re.S).group(0)
    assert 'data-status="rejected"' in row and f"理由: {REASON}" in row

    listener.join(40)
    assert seen and seen[0]["reason"] == REASON  # live, through the hub

    inbox = mesh.wait_for(lambda: (text := person.get("/notices").text) and REJECTED_TITLE in text and text, 20)
    assert f"理由: {REASON}" in inbox
    assert staff["reviewer.012084"].get(f"/cases/{application_id}").text.count(REASON) >= 2  # case and history
    overview = staff["reviewer.012084"].get("/").text
    assert re.search(r'data-status="rejected"><th scope="row">[^<]*</th><td class="num">[1-9]', overview)


def test_a_reviewer_alone_cannot_approve_over_the_threshold(mesh, applied, staff):
    application_id, person = applied["ids"]["four_eyes"], applied["people"]["four_eyes"]
    reviewer, approver = staff["reviewer.012084"], staff["approver.012084"]
    first = _decide(reviewer, application_id, "approve")
    assert first.status_code == 303 and first.headers["location"].endswith("done=reviewed")
    again = _decide(reviewer, application_id, "approve")
    assert again.status_code == 409 and "同じ申請を承認できません" in again.text
    assert 'data-status="in-review"' in person.get("/applications").text

    done = _decide(approver, application_id, "approve")
    assert done.status_code == 303 and done.headers["location"].endswith("done=approved")
    row = re.search(rf'<tr id="a-{application_id}">.*?</tr>', person.get("/applications").text, re.S).group(0)
    assert 'data-status="approved"' in row
    inbox = mesh.wait_for(
        lambda: (text := person.get("/notices").text) and f"{LARGE:,}円を公金受取口座に振り込みます。" in text and text,
        20,
    )
    assert "支給が決まりました" in inbox
