"""Proxy mandates: scopes, validity, revocation by the principal only, statutory proxies of minors."""

from __future__ import annotations

import datetime as dt

import pytest

from publicmesh.identity import Mandates, check_statutory, create_all

pytestmark = pytest.mark.storage

NOW = dt.datetime.now(dt.UTC)
DAY = dt.timedelta(days=1)


@pytest.fixture
def mandates(engine):
    create_all(engine)
    return Mandates(engine)


@pytest.fixture
def people(new_ref):
    return new_ref(), new_ref(), new_ref()


def test_a_mandate_authorizes_its_scopes_only(mandates, people):
    principal, proxy, stranger = people
    granted = mandates.grant(principal, proxy, {"applications", "notices"}, NOW - DAY, NOW + DAY)
    assert mandates.authorize(proxy, principal, "applications") == granted
    assert mandates.authorize(proxy, principal, "notices").id == granted.id
    assert mandates.authorize(proxy, principal, "self-information") is None
    assert mandates.authorize(stranger, principal, "applications") is None
    assert mandates.authorize(principal, proxy, "applications") is None  # mandates are one-way
    with pytest.raises(ValueError):
        mandates.authorize(proxy, principal, "everything")


def test_acting_for_oneself_is_a_self_mandate(mandates, people):
    me = people[0]
    mandate = mandates.authorize(me, me, "settings")
    assert mandate.kind == "self" and mandate.principal_ref == mandate.proxy_ref == me


def test_a_mandate_works_only_within_its_period(mandates, people):
    principal, proxy, _ = people
    mandates.grant(principal, proxy, {"applications"}, NOW + DAY, NOW + 3 * DAY)
    assert mandates.authorize(proxy, principal, "applications") is None
    assert mandates.authorize(proxy, principal, "applications", at=NOW + 2 * DAY) is not None
    assert mandates.authorize(proxy, principal, "applications", at=NOW + 3 * DAY) is None
    assert mandates.active_mandates(principal) == []
    assert len(mandates.mandates_to_show(principal)) == 1  # not yet in force, but the principal sees it


def test_only_the_principal_revokes(mandates, people):
    principal, proxy, stranger = people
    granted = mandates.grant(principal, proxy, {"notices"}, NOW - DAY, NOW + DAY)
    with pytest.raises(PermissionError):
        mandates.revoke(granted.id, proxy)
    with pytest.raises(PermissionError):
        mandates.revoke(granted.id, stranger)
    assert mandates.authorize(proxy, principal, "notices") is not None
    revoked = mandates.revoke(granted.id, principal)
    assert revoked.revoked_at is not None
    assert mandates.authorize(proxy, principal, "notices") is None
    assert mandates.revoke(granted.id, principal).revoked_at == revoked.revoked_at
    assert mandates.mandates_to_show(principal) == []
    with pytest.raises(LookupError):
        mandates.revoke("0" * 32, principal)


def test_listings(mandates, people):
    principal, proxy, other = people
    a = mandates.grant(principal, proxy, {"notices"}, NOW - DAY, NOW + DAY)
    b = mandates.grant(other, proxy, {"applications"}, NOW - DAY, NOW + DAY)
    mandates.grant(principal, other, {"settings"}, NOW - 3 * DAY, NOW - DAY)  # expired
    assert mandates.active_mandates(principal) == [a]
    assert {m.id for m in mandates.mandates_held(proxy)} == {a.id, b.id}
    assert mandates.mandates_held(other) == []
    assert mandates.get(a.id) == a


def test_grant_rules(mandates, people):
    principal, proxy, _ = people
    with pytest.raises(ValueError):
        mandates.grant(principal, principal, {"notices"}, NOW, NOW + DAY)
    with pytest.raises(ValueError):
        mandates.grant(principal, proxy, set(), NOW, NOW + DAY)
    with pytest.raises(ValueError):
        mandates.grant(principal, proxy, {"notices", "bank"}, NOW, NOW + DAY)
    with pytest.raises(ValueError):
        mandates.grant(principal, proxy, {"notices"}, NOW, NOW)
    with pytest.raises(ValueError):
        mandates.grant(principal, proxy, {"notices"}, NOW.replace(tzinfo=None), NOW + DAY)
    with pytest.raises(ValueError):
        mandates.grant(principal, "123456789012", {"notices"}, NOW, NOW + DAY)  # never a My Number


def test_a_parent_of_a_minor_is_a_statutory_proxy(mandates, people):
    parent, child, _ = people
    assert check_statutory(parent, child, is_parent_of_minor=False) is None
    statutory = check_statutory(parent, child, is_parent_of_minor=True)
    assert statutory.kind == "statutory" and statutory.permits("applications")
    assert mandates.authorize(parent, child, "applications") is None
    assert mandates.authorize(parent, child, "applications", is_parent_of_minor=True).kind == "statutory"
    assert mandates.active_mandates(child) == []  # nothing is stored for it


def test_what_the_services_part_is_told_of_a_principals_mandates_to_apply(engine, authority, cards, hanako, people):
    """The portal's answer (portal/proxies.mandates_to_apply): mandates in force covering applications, named as a
    signed application names them, with the proxy's signing certificates; a statutory one by a digest only."""
    from publicmesh.identity import SIGNING, issue_card
    from publicmesh.identity.bootstrap import Identity
    from publicmesh.identity.mandates import reference
    from publicmesh.portal.proxies import mandates_to_apply
    from publicmesh.portal.sessions import SessionStore

    create_all(engine)
    principal, proxy, parent = people
    issue_card(authority, cards, proxy, hanako, "1234", "ABC123")
    mandates = Mandates(engine)
    applying = mandates.grant(principal, proxy, {"applications"}, NOW - DAY, NOW + DAY)
    mandates.grant(principal, proxy, {"notices"}, NOW - DAY, NOW + DAY)  # not for applying
    revoked = mandates.grant(principal, proxy, {"applications"}, NOW - DAY, NOW + DAY)
    mandates.revoke(revoked.id, principal)
    sessions = SessionStore(engine)
    session = sessions.create(parent, "北見 太郎", "012084")
    sessions.act_for(session, principal, "北見 花子", "012084", f"statutory:{parent}:{principal}")
    identity = Identity(engine, authority, cards, None, None, mandates)

    found = {m["mandate"]: m for m in mandates_to_apply(identity, sessions, principal)}
    statutory = reference(f"statutory:{parent}:{principal}")
    assert set(found) == {applying.id, statutory}
    assert found[applying.id]["kind"] == "granted" and found[applying.id]["scopes"] == ["applications"]
    assert found[applying.id]["proxy_certificates"] == [c.serial for c in authority.certificates_of(proxy, SIGNING)]
    assert statutory.startswith("statutory-") and parent not in statutory and principal not in statutory
    assert found[statutory]["proxy_certificates"] == []  # the parent holds no card here
    assert reference(applying.id) == applying.id


def test_the_persons_own_signing_certificates_are_told_until_revoked(engine, authority, cards, hanako, people):
    """portal/proxies.signers_of: the services part accepts the person's own signature only with a certificate
    listed here; after a move revokes it, it is listed no more."""
    from publicmesh.identity import SIGNING, issue_card
    from publicmesh.identity.bootstrap import Identity
    from publicmesh.portal.proxies import signers_of
    from publicmesh.portal.sessions import SessionStore

    create_all(engine)
    person, other, _ = people
    issue_card(authority, cards, person, hanako, "1234", "ABC123")
    issue_card(authority, cards, other, hanako, "1234", "ABC123")
    identity = Identity(engine, authority, cards, None, None, Mandates(engine))
    sessions = SessionStore(engine)
    [theirs] = authority.certificates_of(person, SIGNING)
    assert signers_of(identity, sessions, person) == {"signing_certificates": [theirs.serial], "mandates": []}
    assert signers_of(identity, sessions, person, ["signing_certificates"]) == {"signing_certificates": [theirs.serial]}
    authority.revoke(theirs.serial, "affiliationChanged")
    assert signers_of(identity, sessions, person)["signing_certificates"] == []
    assert signers_of(identity, sessions, other)["signing_certificates"] == [
        c.serial for c in authority.certificates_of(other, SIGNING)
    ]
