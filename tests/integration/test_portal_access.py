"""The portal over HTTP: logins, lockouts, and that nobody reaches another resident's anything."""

from __future__ import annotations

import json
import re

import httpx
import pytest

from publicmesh import notices


def _cards(mesh) -> list[dict]:
    return json.loads((mesh.settings.data_dir / "demo-cards.json").read_text(encoding="utf-8"))


def _login(mesh, card_id: str, pin: str = "1234") -> tuple[httpx.Client, httpx.Response]:
    client = httpx.Client(base_url=mesh.url("portal"), follow_redirects=False, timeout=30)
    page = client.get("/login")
    challenge = re.search(r'name="challenge" value="([^"]+)"', page.text).group(1)
    return client, client.post("/login", data={"card": card_id, "pin": pin, "challenge": challenge})


def _csrf(client: httpx.Client) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', client.get("/settings").text).group(1)


@pytest.fixture(scope="module")
def residents(mesh):
    cards = _cards(mesh)
    a, response_a = _login(mesh, cards[0]["card_id"])
    b, response_b = _login(mesh, cards[3]["card_id"])
    assert response_a.status_code == response_b.status_code == 303
    yield {"a": a, "b": b, "cards": cards}
    a.close()
    b.close()


def test_login_needs_the_right_pin_and_the_card_locks_after_three(mesh):
    card = _cards(mesh)[-1]["card_id"]
    for tries_left in (2, 1):
        _, response = _login(mesh, card, "0000")
        assert response.status_code == 401 and f"残り {tries_left} 回" in response.text
    _, locked = _login(mesh, card, "0000")
    assert locked.status_code == 423
    _, still = _login(mesh, card, "1234")  # even the right PIN: the counter at the city hall must unlock it
    assert still.status_code == 423


def test_pages_need_a_login(mesh):
    client = httpx.Client(base_url=mesh.url("portal"), follow_redirects=False)
    for path in ("/", "/me", "/records", "/notices", "/applications", "/settings"):
        assert client.get(path).status_code == 303


def test_a_replayed_challenge_does_not_log_in(mesh):
    card = _cards(mesh)[2]["card_id"]
    client = httpx.Client(base_url=mesh.url("portal"), follow_redirects=False)
    challenge = re.search(r'name="challenge" value="([^"]+)"', client.get("/login").text).group(1)
    assert client.post("/login", data={"card": card, "pin": "1234", "challenge": challenge}).status_code == 303
    again = httpx.Client(base_url=mesh.url("portal"), follow_redirects=False)
    assert again.post("/login", data={"card": card, "pin": "1234", "challenge": challenge}).status_code == 401


def test_my_information_comes_through_the_hub_and_is_recorded(residents):
    a = residents["a"]
    before = a.get("/records").text.count("record-")
    page = a.get("/me")
    assert page.status_code == 200 and "円" in page.text and "公共サービスメッシュ経由で取得" in page.text
    after = a.get("/records").text
    assert after.count('id="record-') >= before + 9  # one exchange per agency source
    assert "✓" in after


def test_a_second_resident_gets_404_for_everything_of_the_first(mesh, residents):
    a, b = residents["a"], residents["b"]
    me_a, me_b = a.get("/me").text, b.get("/me").text
    name_a = re.search(r"<dt>氏</dt><dd>([^<]+)</dd>", me_a).group(1) + re.search(r"<dt>名</dt><dd>([^<]+)</dd>", me_a).group(1)
    name_b = re.search(r"<dt>氏</dt><dd>([^<]+)</dd>", me_b).group(1) + re.search(r"<dt>名</dt><dd>([^<]+)</dd>", me_b).group(1)
    assert name_a != name_b
    for path in ("/", "/me", "/records", "/notices", "/applications", "/settings"):
        assert name_a not in b.get(path).text
    # A's resources, by id
    notice = notices.send(mesh_notices(mesh), notices.NoticeDraft(
        person_ref=person_ref_of(mesh, residents["cards"][0]["card_id"]), sender="GOV/digital/portal", category="info",
        title_ja="テスト", title_en="Test", body_ja="本文", body_en="Body", idempotency_key="matrix-test"))
    position = int(re.search(r'id="record-(\d+)"', a.get("/records").text).group(1))
    csrf_a, csrf_b = _csrf(a), _csrf(b)
    code_b = re.search(r'id="proxy-code">([^<]+)<', b.get("/settings").text).group(1)
    a.post("/settings/mandates", data={"csrf": csrf_a, "proxy_code": code_b, "scopes": ["self-information"], "days": "1"})
    mandate = re.search(r'/settings/mandates/([^/]+)/revoke', a.get("/settings").text).group(1)
    requests = [
        ("GET", f"/records/{position}.json", None),
        ("POST", f"/notices/{notice.id}/read", {"csrf": csrf_b}),
        ("POST", f"/settings/mandates/{mandate}/revoke", {"csrf": csrf_b}),
        ("POST", "/settings/consents/unknown-or-not-yours/revoke", {"csrf": csrf_b}),
        ("POST", "/settings/wallets/not-yours/revoke", {"csrf": csrf_b}),
        ("POST", "/settings/contact/confirm", {"csrf": csrf_b, "code_id": "not-yours", "code": "123456"}),
    ]
    for method, path, data in requests:
        response = b.request(method, path, data=data)
        assert response.status_code == 404, (path, response.status_code)
        assert name_a not in response.text
    assert a.get(f"/records/{position}.json").status_code == 200
    assert notices.get_notice(mesh_notices(mesh), notice.id, person_ref_of(mesh, residents["cards"][0]["card_id"])).read_at is None


def mesh_notices(mesh):
    from publicmesh.storage import engine_for

    return engine_for("notices", mesh.settings)


def person_ref_of(mesh, card_id: str) -> str:
    from publicmesh.identity import open_identity

    return open_identity(mesh.settings).cards.card(card_id).person_ref
