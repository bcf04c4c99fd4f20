"""An operator publishes a service from the staff console of a running mesh: logs in with a password and a TOTP code,
uploads a definition with a mistake and sees its line with nothing published, then publishes a valid one and
follows it to the summary, whose numbers are the services store's. Municipal staff get 403 on these pages, and the operator on the review pages."""

from __future__ import annotations

import base64
import json
import re
import time
from pathlib import Path

import httpx
import pytest
import yaml
from sqlalchemy import func, select

from publicmesh.console.staff import totp
from publicmesh.services.store import applications, offers, publications
from publicmesh.storage import engine_for

DEFINITIONS = Path(__file__).resolve().parents[2] / "publicmesh" / "services" / "definitions"
SERVICE = "console-publish-test"
TITLE = "運用担当者の公開試験給付金"
OPERATOR = "operator.national"
MUNICIPAL = ("reviewer.132012", "approver.232025")  # accounts no other test logs in with (a TOTP code is good once)


def _staff_login(mesh, username: str) -> httpx.Client:
    accounts = {a["username"]: a for a in json.loads((mesh.settings.data_dir / "demo-staff.json").read_text("utf-8"))}
    account = accounts[username]
    secret = base64.b32decode(account["totp_secret"] + "=" * (-len(account["totp_secret"]) % 8))
    client = httpx.Client(base_url=mesh.url("console"), follow_redirects=False, timeout=30)
    csrf = _csrf(client.get("/login").text)
    answer = client.post(
        "/login",
        data={"csrf": csrf, "username": username, "password": account["password"], "totp": totp(secret, time.time())},
    )
    assert answer.status_code == 303, answer.text
    return client


def _csrf(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def _number(html: str, element_id: str) -> int:
    return int(re.search(rf'id="{element_id}">¥?([\d,]+)<', html).group(1).replace(",", ""))


def _definition() -> str:
    """The emergency benefit under its own id and title, so no other test's service is touched."""
    doc = yaml.safe_load((DEFINITIONS / "emergency-benefit.yaml").read_text(encoding="utf-8"))
    doc["id"], doc["title"] = SERVICE, {"ja": TITLE, "en": "Operator publishing test benefit"}
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)


def _upload(client: httpx.Client, text: str, name: str) -> httpx.Response:
    csrf = _csrf(client.get("/publish").text)
    return client.post(
        "/publish", data={"csrf": csrf, "action": "publish"}, files={"file": (name, text.encode(), "application/yaml")}
    )


def _store(mesh, query):
    engine = engine_for("services", mesh.settings)
    try:
        with engine.connect() as conn:
            return conn.execute(query).all()
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def operator(mesh):
    client = _staff_login(mesh, OPERATOR)
    yield client
    client.close()


def test_an_operator_lands_on_publishing(mesh, operator):
    assert operator.get("/").headers["location"] == "/publish"
    page = operator.get("/publish")
    assert page.status_code == 200 and f"{OPERATOR}（全国）" in page.text
    assert "緊急支援給付金（低所得世帯）" in page.text and 'action="/publish"' in page.text
    for path in ("/queue", "/cases/0123456789abcdef"):  # an operator reviews no cases: 403, not an empty queue
        refused = operator.get(path)
        assert refused.status_code == 403 and "市区町村の職員だけ" in refused.text
    refused = operator.post("/cases/0123456789abcdef/approve", data={"csrf": "x"})
    assert refused.status_code == 403


def test_a_definition_with_a_mistake_shows_its_line_and_publishes_nothing(mesh, operator):
    text = _definition().replace("unit: household", "unit: family")
    line = text.splitlines().index("unit: family") + 1
    before = _store(mesh, select(func.count()).select_from(publications))[0][0]
    answer = _upload(operator, text, "mistake.yaml")
    assert answer.status_code == 422
    assert "mistake.yaml に 1 件の問題があります。公開していません。" in answer.text
    assert f"{line}行目" in answer.text and "family" in answer.text
    assert _store(mesh, select(func.count()).select_from(publications))[0][0] == before
    assert not _store(mesh, select(offers.c.id).where(offers.c.service_id == SERVICE).limit(1))


def test_an_operator_publishes_and_the_summary_is_what_the_store_holds(mesh, operator):
    started = _upload(operator, _definition(), f"{SERVICE}.yaml")
    assert started.status_code == 303, started.text
    run_url = started.headers["location"]
    deadline = time.monotonic() + 180
    while (state := operator.get(run_url + "/progress").json())["status"] == "running":
        assert time.monotonic() < deadline, state
        time.sleep(0.5)
    assert state["status"] == "done", operator.get(run_url).text
    page = operator.get(run_url).text
    assert f'id="started-by">{OPERATOR}<' in page

    (published,) = _store(
        mesh, select(publications.c.eligible, publications.c.total_yen).where(publications.c.service_id == SERVICE)
    )
    held = dict(
        _store(
            mesh, select(offers.c.tenant, func.count()).where(offers.c.service_id == SERVICE).group_by(offers.c.tenant)
        )
    )
    amounts = _store(mesh, select(func.sum(offers.c.amount_yen)).where(offers.c.service_id == SERVICE))[0][0]
    prior = _store(
        mesh, select(func.count()).where(applications.c.service_id == SERVICE, applications.c.channel == "prior-intent")
    )[0][0]
    assert sum(held.values()) > 0
    assert _number(page, "new-offers") == _number(page, "eligible") == sum(held.values()) == published.eligible
    assert _number(page, "total-yen") == amounts == published.total_yen
    assert _number(page, "prior-intent") == prior
    for code, count in held.items():
        row = re.search(rf'<tr data-municipality="{code}">(.*?)</tr>', page, re.S).group(1)
        assert re.findall(r'class="num">([^<]+)<', row)[1] == f"{count:,}"
    assert re.search(r'data-phase="evaluate"><th scope="row">[^<]+</th><td class="num">\d+\.\d\d<', page)

    listing = operator.get("/publish").text
    run_id = run_url.rsplit("/", 1)[1]
    record = re.search(rf'<tr id="r-{run_id}">(.*?)</tr>', listing, re.S).group(1)
    assert TITLE in record and OPERATOR in record and 'data-status="done"' in record


def test_municipal_staff_get_403(mesh):
    for username in MUNICIPAL:
        client = _staff_login(mesh, username)
        try:
            assert client.get("/publish").status_code == 403
            refused = client.post(
                "/publish",
                data={"csrf": _csrf(client.get("/queue").text), "service": "emergency-benefit", "action": "publish"},
            )
            assert refused.status_code == 403 and "権限がありません" in refused.text
        finally:
            client.close()
