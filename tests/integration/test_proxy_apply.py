"""A proxy applies for their principal within the mandate (issue 4 §4), over HTTP on a running mesh: the proxy
signs with their own card, the signed content names the proxy and the mandate, which the services part checks
against the signing certificate and the principal's mandates (asked of the portal through the hub); the
application is the principal's with the channel "proxy", and the principal sees it and the hub's record of the
submission. Outside the mandate — no applications scope, a revoked mandate, another household's offer, a mandate id
or a proxy the signed content names falsely — nothing is applied for."""

from __future__ import annotations

import base64
import json
import re

import httpx
import pytest
from service_variants import variant
from sqlalchemy import select

from publicmesh.agencies.resident_registry import residents
from publicmesh.applications.content import application_content
from publicmesh.identity import basic_information, load_certificate, open_identity
from publicmesh.identity.certificates import serial_hex
from publicmesh.protocol.client import HubError
from publicmesh.protocol.members import PORTAL
from publicmesh.services.offers import with_full_form
from publicmesh.services.operator import publish_file
from publicmesh.services.store import applications, history, offers
from publicmesh.storage import engine_for

SERVICE = "proxy-test-benefit"
TITLE = "代理申請の試験給付金"
AMOUNT = 30_000
DEMO_SIGNING_PASSWORD = "ABC123"  # every demo card's, the principal's included
PROXY_SIGNING_PASSWORD = "PRX789"  # the proxy's card gets its own for this module, so we know whose card signed


def _name(card: dict) -> str:
    return card["label"].split("（")[0]  # "森 昭（モリ アキラ）" → "森 昭"


def _our_cards(mesh) -> dict:
    """Cards no other test applies with, locks or changes (the demo cards differ from seed to seed): the principal
    is a head of household that test_services and test_console do not apply with, test_portal_access does not move
    (cards[1]) or lock (the last); the proxies are the other cards of cards[4:-1], those of no other test's
    applicants first. None is cards[0], whose name test_portal_access looks for on cards[3]'s pages."""
    cards = json.loads((mesh.settings.data_dir / "demo-cards.json").read_text(encoding="utf-8"))
    is_head = [c["relation"] in ("head", "single") for c in cards]
    services_head = next(c for c, head in zip(cards[4:-1] + cards, is_head[4:-1] + is_head) if head)
    console_heads = [c for c, head in zip(cards[4:-1], is_head[4:-1]) if head][-2:]
    taken = [services_head, *console_heads, cards[0], cards[1], cards[-1]]
    principal = next((c for c, head in zip(cards[2:-1], is_head[2:-1]) if head and c not in taken), None)
    proxies = sorted((c for c in cards[4:-1] if c is not principal), key=lambda c: c in taken)
    if principal is None:
        pytest.fail("every head of household among the demo cards is another test's")
    return {"principal": principal, "proxy": proxies[0], "limited": proxies[1], "revoked": proxies[2], "all": cards}


def _other_head(mesh, taken: set[str]) -> str:
    """The name of a head of household in the demo city who holds no demo card: the household that is not ours."""
    engine = engine_for("resident-registry", mesh.settings)
    r = residents.c
    with engine.connect() as conn:
        rows = conn.execute(
            select(r.family_name, r.given_name)
            .where(r.tenant == "012084", r.relation == "head", r.status == "resident")
            .order_by(r.pseudonym)
            .limit(50)
        ).all()
    engine.dispose()
    return next(name for name in (f"{f} {g}" for f, g in rows) if name not in taken)


@pytest.fixture(scope="module")
def cast(mesh):
    return _our_cards(mesh)


@pytest.fixture(scope="module")
def published(mesh, cast, tmp_path_factory):
    """A benefit for exactly two households, the principal's and another, decided by the rules at once."""
    other = _other_head(mesh, {_name(c) for c in cast["all"]})
    path = variant(
        tmp_path_factory.mktemp("definitions"),
        SERVICE,
        {"ja": TITLE, "en": "Proxy application test benefit"},
        names=[_name(cast["principal"]), other],
        amount=str(AMOUNT),
        workflow={"automatic": True, "review_over": 10_000_000},
    )
    summary = publish_file(mesh.settings, path)
    assert summary.eligible >= 2, summary.as_dict()
    return summary


@pytest.fixture(scope="module")
def proxy_password(mesh, cast):
    """The counter (窓口) sets the proxy's card a signing password of its own; the demo one again afterwards."""
    cards = open_identity(mesh.settings).cards
    card_id = cast["proxy"]["card_id"]
    cards.unlock(card_id, signing_password=PROXY_SIGNING_PASSWORD)
    yield PROXY_SIGNING_PASSWORD
    cards.unlock(card_id, signing_password=DEMO_SIGNING_PASSWORD)


def _csrf(client: httpx.Client) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', client.get("/").text).group(1)


@pytest.fixture(scope="module")
def clients(mesh, cast):
    opened = {role: mesh.portal_login(cast[role]["card_id"]) for role in ("principal", "proxy", "limited", "revoked")}
    yield opened
    for client in opened.values():
        client.close()


def _give(principal: httpx.Client, proxy: httpx.Client, principal_name: str, scopes: list[str]) -> str:
    """The principal gives the mandate on their settings page; the proxy then acts for them. Returns its id."""
    code = re.search(r'id="proxy-code">([^<]+)<', proxy.get("/settings").text).group(1)
    given = principal.post(
        "/settings/mandates", data={"csrf": _csrf(principal), "proxy_code": code, "scopes": scopes, "days": "7"}
    )
    assert given.status_code == 200 and "代理権を与えました" in given.text
    home = proxy.get("/").text
    mandate = re.search(
        rf'name="mandate" value="([^"]+)"><button[^>]*>{re.escape(principal_name)} さんの代理で操作する', home
    ).group(1)
    assert proxy.post("/act-for", data={"csrf": _csrf(proxy), "mandate": mandate}).status_code == 303
    assert "代理人として操作しています" in proxy.get("/").text
    return mandate


def _offers(mesh, people, principal_card: dict) -> tuple[dict, dict]:
    """Our service's offer to the principal's household, and one to another household (names are not unique:
    the offer is found by the principal's pseudonym in the services part)."""
    person_ref = open_identity(mesh.settings).cards.card(principal_card["card_id"]).person_ref
    subject = people.convert([person_ref], PORTAL.pseudonym_domain, "services")[0]
    engine = engine_for("services", mesh.settings)
    with engine.connect() as conn:
        found = [
            with_full_form(conn, r)
            for r in conn.execute(select(offers).where(offers.c.service_id == SERVICE)).mappings()
        ]
    engine.dispose()
    ours = [o for o in found if o["subject"] == subject]
    theirs = [o for o in found if o["subject"] != subject]
    assert len(ours) == 1 and theirs, (subject, [o["subject"] for o in found])
    return ours[0], theirs[0]


def _applications_for(mesh, offer_id: str) -> list[dict]:
    engine = engine_for("services", mesh.settings)
    with engine.connect() as conn:
        rows = [
            dict(r) for r in conn.execute(select(applications).where(applications.c.offer_id == offer_id)).mappings()
        ]
    engine.dispose()
    return rows


def _history(mesh, application_id: str) -> list[tuple[str, str]]:
    engine = engine_for("services", mesh.settings)
    with engine.connect() as conn:
        rows = conn.execute(
            select(history.c.status, history.c.actor)
            .where(history.c.application_id == application_id)
            .order_by(history.c.id)
        ).all()
    engine.dispose()
    return [tuple(r) for r in rows]


def _refusal(response: httpx.Response) -> str:
    """What the portal said when it did not apply: the form's error line, or the start of the page."""
    shown = re.search(r'<p class="error" role="alert">(.*?)</p>', response.text, re.S)
    return f"{response.status_code}: {shown.group(1) if shown else response.text[:500]}"


def _offer_form(client: httpx.Client, offer_id: str) -> httpx.Response:
    return client.get(f"/applications/offers/{offer_id}")


def test_without_the_applications_scope_a_proxy_neither_sees_nor_applies(mesh, people, cast, clients, published):
    ours, _ = _offers(mesh, people, cast["principal"])
    limited = clients["limited"]
    _give(clients["principal"], limited, _name(cast["principal"]), ["self-information", "notices"])
    assert limited.get("/me").status_code == 200  # within the mandate
    assert limited.get("/applications").status_code == 404
    assert _offer_form(limited, ours["id"]).status_code == 404
    refused = limited.post(
        f"/applications/offers/{ours['id']}", data={"csrf": _csrf(limited), "password": DEMO_SIGNING_PASSWORD}
    )
    assert refused.status_code in (403, 404)
    assert _applications_for(mesh, ours["id"]) == []


def test_after_the_mandate_is_revoked_the_proxy_cannot_apply(mesh, people, cast, clients, published):
    ours, _ = _offers(mesh, people, cast["principal"])
    principal, proxy = clients["principal"], clients["revoked"]
    mandate = _give(principal, proxy, _name(cast["principal"]), ["applications"])
    form = _offer_form(proxy, ours["id"])
    assert form.status_code == 200 and TITLE in form.text
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
    revoked = principal.post(f"/settings/mandates/{mandate}/revoke", data={"csrf": _csrf(principal)})
    assert revoked.status_code == 200 and "代理権を取り消しました" in revoked.text
    refused = proxy.post(f"/applications/offers/{ours['id']}", data={"csrf": csrf, "password": DEMO_SIGNING_PASSWORD})
    assert refused.status_code in (403, 404)
    assert _applications_for(mesh, ours["id"]) == []
    assert "代理人として操作しています" not in proxy.get("/").text  # back on their own account


def test_a_proxy_cannot_apply_for_another_household(mesh, people, cast, clients, published, proxy_password):
    _, theirs = _offers(mesh, people, cast["principal"])
    proxy = clients["proxy"]
    _give(clients["principal"], proxy, _name(cast["principal"]), ["applications"])
    assert _offer_form(proxy, theirs["id"]).status_code == 404
    refused = proxy.post(
        f"/applications/offers/{theirs['id']}", data={"csrf": _csrf(proxy), "password": proxy_password}
    )
    assert refused.status_code in (403, 404)
    assert _applications_for(mesh, theirs["id"]) == []


def _held(mesh, proxy_card: dict, principal_card: dict) -> str:
    """The id of the mandate in force the proxy holds for the principal."""
    cards = open_identity(mesh.settings)
    proxy_ref, principal_ref = (cards.cards.card(c["card_id"]).person_ref for c in (proxy_card, principal_card))
    return next(m.id for m in cards.mandates.mandates_held(proxy_ref) if m.principal_ref == principal_ref)


def _naming(card, mandate: str) -> dict:
    certificate = load_certificate(card.signing_certificate_pem())
    return {
        "name": basic_information(certificate).name,
        "certificate": serial_hex(certificate.serial_number),
        "mandate": mandate,
    }


def test_a_mandate_or_proxy_named_falsely_in_the_signed_content_is_refused(
    mesh, people, cast, clients, published, proxy_password
):
    ours, _ = _offers(mesh, people, cast["principal"])
    if "代理人として操作しています" not in clients["proxy"].get("/").text:  # run on its own: give the mandate here
        _give(clients["principal"], clients["proxy"], _name(cast["principal"]), ["applications"])
    mandate = _held(mesh, cast["proxy"], cast["principal"])
    identity = open_identity(mesh.settings)
    proxy, limited = (identity.cards.card(cast[role]["card_id"]) for role in ("proxy", "limited"))
    principal_ref = identity.cards.card(cast["principal"]["card_id"]).person_ref
    tampered = mandate[:-1] + ("0" if mandate[-1] != "0" else "1")
    falsely = [  # what the signed content and the submission name
        (_naming(proxy, tampered), "no mandate"),
        (_naming(proxy, _held(mesh, cast["limited"], cast["principal"])), "no mandate"),  # no applications scope
        ({**_naming(limited, mandate), "name": _naming(proxy, mandate)["name"]}, "did not sign"),
    ]
    for named, why in falsely:
        content = application_content(ours, proxy=named)
        signed = {
            "content": base64.b64encode(content).decode(),
            "certificate": proxy.signing_certificate_pem(),
            "signature": base64.b64encode(proxy.sign_document(content, proxy_password)).decode(),
        }
        with pytest.raises(HubError) as refused:
            mesh.client(str(PORTAL))._post(
                "/v1/query",
                {
                    "provider": "GOV/digital/services",
                    "dataset": "application",
                    "subject": principal_ref,
                    "attributes": ["submit"],
                    "purpose": "apply",
                    "payload": {"action": "apply", "offer": ours["id"], "signed": signed, "proxy": named},
                },
            )
        assert refused.value.status == 422 and why in refused.value.problem["detail"], refused.value.problem
    assert _applications_for(mesh, ours["id"]) == []


def test_a_proxy_applies_for_the_principal_with_their_own_signing_password(
    mesh, people, cast, clients, published, proxy_password
):
    ours, _ = _offers(mesh, people, cast["principal"])
    principal, proxy = clients["principal"], clients["proxy"]
    if "代理人として操作しています" not in proxy.get("/").text:  # run on its own: give the mandate here
        _give(principal, proxy, _name(cast["principal"]), ["applications"])
    listing = proxy.get("/applications")
    assert listing.status_code == 200
    assert re.search(rf'{TITLE}</strong>.*?href="/applications/offers/{ours["id"]}"', listing.text, re.S)
    form = _offer_form(proxy, ours["id"])
    assert form.status_code == 200 and _name(cast["principal"]) in form.text  # the principal's pre-filled form
    assert "あなた自身のマイナンバーカード" in form.text  # told whose signing password it asks for
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)

    wrong = proxy.post(f"/applications/offers/{ours['id']}", data={"csrf": csrf, "password": DEMO_SIGNING_PASSWORD})
    assert wrong.status_code == 401  # the principal's password is not the proxy's
    assert _applications_for(mesh, ours["id"]) == []
    done = proxy.post(f"/applications/offers/{ours['id']}", data={"csrf": csrf, "password": proxy_password})
    assert done.status_code == 303 and done.headers["location"].startswith("/applications?done="), _refusal(done)
    application_id = done.headers["location"].split("done=")[1]

    [row] = _applications_for(mesh, ours["id"])
    assert row["id"] == application_id and row["channel"] == "proxy" and row["subject"] == ours["subject"]
    signed = json.loads(row["signature"])
    identity = open_identity(mesh.settings)
    assert signed["certificate"] == identity.cards.card(cast["proxy"]["card_id"]).signing_certificate_pem()
    assert signed["certificate"] != identity.cards.card(cast["principal"]["card_id"]).signing_certificate_pem()
    content = json.loads(base64.b64decode(signed["content"]))
    assert content["offer"] == ours["id"]
    proxy_card = identity.cards.card(cast["proxy"]["card_id"])
    assert content["mandate"] == _held(mesh, cast["proxy"], cast["principal"])  # the mandate the proxy acts under
    assert content["proxy"] == {k: v for k, v in _naming(proxy_card, "").items() if k != "mandate"}
    assert _history(mesh, application_id)[0] == ("received", "proxy")  # staff see who submitted it

    mine = principal.get("/applications").text  # the principal sees it as their own
    assert f'id="a-{application_id}"' in mine and TITLE in mine
    assert f'href="/applications/offers/{ours["id"]}"' not in mine  # no longer open
    assert f"POST /applications/offers/{ours['id']}" in principal.get("/").text  # the proxy's action, shown
    records = principal.get("/records").text
    submission = re.search(
        r'<tr id="record-(\d+)">(?:(?!</tr>).)*application: submit(?:(?!</tr>).)*</tr>', records, re.S
    )
    assert submission, "the hub's record of the submission is not on the principal's records page"
    assert ">apply<br>" in submission.group(0)  # the purpose the hub recorded
    assert principal.get(f"/records/{submission.group(1)}.json").status_code == 200


def test_a_proxy_withdraws_within_the_mandate_signing_it_and_the_history_says_so(
    mesh, people, cast, clients, published, proxy_password
):
    ours, _ = _offers(mesh, people, cast["principal"])
    [row] = _applications_for(mesh, ours["id"])  # the one the proxy applied for above
    proxy = clients["proxy"]
    assert "代理人として操作しています" in proxy.get("/").text
    assert f'href="/applications/{row["id"]}/withdraw"' in proxy.get("/applications").text
    page = proxy.get(f"/applications/{row['id']}/withdraw")
    assert page.status_code == 200 and 'name="password"' in page.text
    unsigned = proxy.post(f"/applications/{row['id']}/withdraw", data={"csrf": _csrf(proxy)})
    assert unsigned.status_code == 422  # no signing password: nothing is sent
    wrong = proxy.post(f"/applications/{row['id']}/withdraw", data={"csrf": _csrf(proxy), "password": "WRONG1"})
    assert wrong.status_code == 401
    assert _history(mesh, row["id"])[-1][0] != "withdrawn"
    withdrawn = proxy.post(
        f"/applications/{row['id']}/withdraw", data={"csrf": _csrf(proxy), "password": proxy_password}
    )
    assert withdrawn.status_code == 303, _refusal(withdrawn)
    assert _history(mesh, row["id"])[-1] == ("withdrawn", "proxy")
    cards = open_identity(mesh.settings).cards
    cards.unlock(cast["proxy"]["card_id"], signing_password=proxy_password)  # the wrong try above counted


def test_after_the_withdrawal_the_principal_applies_again_signing_an_application_that_names_it(
    mesh, people, cast, clients, published
):
    ours, _ = _offers(mesh, people, cast["principal"])
    [withdrawn] = [r for r in _applications_for(mesh, ours["id"]) if r["status"] == "withdrawn"]
    principal = clients["principal"]
    assert f'href="/applications/offers/{ours["id"]}"' in principal.get("/applications").text  # open again
    form = _offer_form(principal, ours["id"])
    assert form.status_code == 200 and _name(cast["principal"]) in form.text
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
    done = principal.post(f"/applications/offers/{ours['id']}", data={"csrf": csrf, "password": DEMO_SIGNING_PASSWORD})
    assert done.status_code == 303 and done.headers["location"].startswith("/applications?done="), _refusal(done)
    again = next(r for r in _applications_for(mesh, ours["id"]) if r["id"] != withdrawn["id"])
    assert again["channel"] == "tap" and again["status"] != "withdrawn"
    content = json.loads(base64.b64decode(json.loads(again["signature"])["content"]))
    assert content["after_withdrawal"]["application"] == withdrawn["id"]  # so the old signature cannot be replayed
    assert f'href="/applications/offers/{ours["id"]}"' not in principal.get("/applications").text
