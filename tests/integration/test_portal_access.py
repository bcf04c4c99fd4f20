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
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    return client, client.post("/login", data={"card": card_id, "pin": pin, "challenge": challenge, "csrf": csrf})


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
    page = client.get("/login")
    challenge = re.search(r'name="challenge" value="([^"]+)"', page.text).group(1)
    form = {
        "card": card,
        "pin": "1234",
        "challenge": challenge,
        "csrf": re.search(r'name="csrf" value="([^"]+)"', page.text).group(1),
    }
    key = client.cookies["portal_login"]
    assert client.post("/login", data=form).status_code == 303
    # the same challenge, with the form token and cookie it was shown with: refused as used
    again = httpx.Client(base_url=mesh.url("portal"), follow_redirects=False, cookies={"portal_login": key})
    assert again.post("/login", data=form).status_code == 401


def test_my_information_comes_through_the_hub_and_is_recorded(residents):
    a = residents["a"]
    page = a.get("/me")
    assert page.status_code == 200 and "円" in page.text
    fetched = re.findall(r"記録番号 (\d+)", page.text)  # each section names the exchange record that fetched it
    assert len(fetched) >= 5
    history = a.get("/records").text
    for position in fetched:
        assert f'id="record-{position}"' in history
    assert history.count("✓") >= len(fetched)


def test_a_second_resident_gets_404_for_everything_of_the_first(mesh, residents):
    a, b = residents["a"], residents["b"]
    me_a, me_b = a.get("/me").text, b.get("/me").text
    name_a = re.search(r"<dt>氏</dt><dd>([^<]+)</dd>", me_a).group(1) + re.search(
        r"<dt>名</dt><dd>([^<]+)</dd>", me_a
    ).group(1)
    name_b = re.search(r"<dt>氏</dt><dd>([^<]+)</dd>", me_b).group(1) + re.search(
        r"<dt>名</dt><dd>([^<]+)</dd>", me_b
    ).group(1)
    assert name_a != name_b
    for path in ("/", "/me", "/records", "/notices", "/applications", "/settings"):
        assert name_a not in b.get(path).text
    # A's resources, by id
    notice = notices.send(
        mesh_notices(mesh),
        notices.NoticeDraft(
            person_ref=person_ref_of(mesh, residents["cards"][0]["card_id"]),
            sender="GOV/digital/portal",
            category="info",
            title_ja="テスト",
            title_en="Test",
            body_ja="本文",
            body_en="Body",
            idempotency_key="matrix-test",
        ),
    )
    position = int(re.search(r'id="record-(\d+)"', a.get("/records").text).group(1))
    csrf_a, csrf_b = _csrf(a), _csrf(b)
    code_b = re.search(r'id="proxy-code">([^<]+)<', b.get("/settings").text).group(1)
    a.post(
        "/settings/mandates", data={"csrf": csrf_a, "proxy_code": code_b, "scopes": ["self-information"], "days": "1"}
    )
    mandate = re.search(r"/settings/mandates/([^/]+)/revoke", a.get("/settings").text).group(1)
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
    assert (
        notices.get_notice(mesh_notices(mesh), notice.id, person_ref_of(mesh, residents["cards"][0]["card_id"])).read_at
        is None
    )


def mesh_notices(mesh):
    from publicmesh.storage import engine_for

    return engine_for("notices", mesh.settings)


def person_ref_of(mesh, card_id: str) -> str:
    from publicmesh.identity import open_identity

    return open_identity(mesh.settings).cards.card(card_id).person_ref


def test_a_move_revokes_the_signing_certificate_tells_the_person_and_a_new_one_can_be_issued(mesh, people):
    import datetime as dt
    import time

    from publicmesh.agencies import resident_registry
    from publicmesh.storage import engine_for

    card = _cards(mesh)[1]
    person_ref = person_ref_of(mesh, card["card_id"])
    registry_ref = people.convert([person_ref], "portal", "resident-registry")[0]
    client, response = _login(mesh, card["card_id"])
    assert response.status_code == 303
    assert "有効です" in client.get("/settings").text
    engine = engine_for("resident-registry", mesh.settings)
    with engine.begin() as conn:
        resident_registry.register_move(
            conn, "012084", registry_ref, "0900018", "北海道北見市青葉町1丁目2番3号", dt.date.today()
        )
    engine.dispose()
    deadline = time.monotonic() + 30
    while "署名用電子証明書が失効しました" not in client.get("/notices").text:
        assert time.monotonic() < deadline, "the move never reached the portal"
        time.sleep(0.3)
    settings_page = client.get("/settings").text
    assert "失効しています" in settings_page
    csrf = re.search(r'name="csrf" value="([^"]+)"', settings_page).group(1)
    malformed = client.post("/settings/signing-certificate", data={"csrf": csrf, "password": "abc"})
    assert malformed.status_code == 422  # a signing password is 6–16 letters and digits
    reissued = client.post("/settings/signing-certificate", data={"csrf": csrf, "password": "NEW456"})
    assert reissued.status_code == 200 and "署名用電子証明書を発行しました" in reissued.text
    from publicmesh.identity import SIGNING, basic_information, load_certificate, open_identity

    identity = open_identity(mesh.settings)
    records = identity.authority.certificates_of(person_ref, SIGNING)
    assert len(records) == 1
    renewed = identity.cards.card(card["card_id"])
    assert "青葉町1丁目2番3号" in basic_information(load_certificate(renewed.signing_certificate_pem())).address
    assert renewed.sign_document(b"intent", "NEW456")  # the new password is the card's now


def test_a_parent_acts_for_a_minor_child_without_a_grant_and_the_child_sees_it(mesh):
    parent, response = _login(mesh, _cards(mesh)[0]["card_id"])
    home = parent.get("/").text
    child = re.search(r'name="child" value="([^"]+)"', home)
    assert child, "the head of a household with a minor child is offered to act for the child"
    csrf = re.search(r'name="csrf" value="([^"]+)"', home).group(1)
    assert parent.post("/act-for", data={"csrf": csrf, "child": child.group(1)}).status_code == 303
    me = parent.get("/me").text
    assert "代理人として操作しています" in me and "<dt>続柄</dt>" not in me
    assert re.search(r"<dt>世帯主との続柄</dt><dd>子</dd>", me)
    # a made-up child is refused
    assert parent.post("/act-for", data={"csrf": csrf, "child": "A" * 22}).status_code == 404
    parent.post("/act-for", data={"csrf": csrf, "mandate": ""})
    # a granted proxy's views are recorded and shown to the principal
    principal, _ = _login(mesh, _cards(mesh)[2]["card_id"])
    proxy, _ = _login(mesh, _cards(mesh)[4]["card_id"])
    code = re.search(r'id="proxy-code">([^<]+)<', proxy.get("/settings").text).group(1)
    principal.post(
        "/settings/mandates",
        data={"csrf": _csrf(principal), "proxy_code": code, "scopes": ["self-information"], "days": "3"},
    )
    mandate = re.search(r'name="mandate" value="([^"]+)"', proxy.get("/").text).group(1)
    proxy.post("/act-for", data={"csrf": _csrf_of(proxy), "mandate": mandate})
    assert proxy.get("/me").status_code == 200
    assert proxy.get("/settings").status_code == 404  # outside the mandate's scope
    assert "GET /me" in principal.get("/").text


def _csrf_of(client: httpx.Client) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', client.get("/").text).group(1)
