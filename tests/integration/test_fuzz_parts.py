"""Schemathesis against every part's OpenAPI document, on a mesh of the fuzz tests' own (tests/fuzzing.py): the
number service, agency nodes and the services part signed as the hub calls them, the hub signed as its members call
it, the witness, the portal and the staff console in a logged-in session. No answer is a server error, none hangs;
every signed operation sent unsigned is refused with a 401 problem, and signed by a member the part does not answer
(the number service, the nodes, the portal's routes for the hub) with a 401 or 403 problem."""

from __future__ import annotations

import os

import httpx
import pytest
from fuzzing import CHECKS, MeshSignature, Tally, fuzz, load, portal_session, staff_session, start_mesh, url_of
from schemathesis.checks import not_a_server_error

from publicmesh.protocol.members import HUB

BASE_PORT = int(os.environ.get("PUBLICMESH_TEST_BASE_PORT", 9100)) + 50  # the integration meshes use +0 and +100
TALLIES: list[Tally] = []
STRANGER = "GOV/nta/national-tax"  # neither the hub nor a registry: the number service and the nodes refuse it


@pytest.fixture(scope="module")
def fuzz_mesh(tmp_path_factory):
    settings, supervisor = start_mesh(tmp_path_factory.mktemp("fuzz-mesh"), BASE_PORT)
    try:
        yield settings
    finally:
        supervisor.stop()
        print("\n" + "\n".join(t.line() for t in TALLIES))


def signed_as(settings, member: str, **by_path: str):
    """POSTs signed as ``member`` (or the member ``by_path`` names for a path); GETs unsigned."""
    signatures = {m: MeshSignature(settings, m) for m in {member, *by_path.values()}}
    return lambda method, path: signatures[by_path.get(path, member)] if method == "POST" else None


def unsigned(_method: str, _path: str) -> None:
    return None


def passed(tally: Tally) -> None:
    TALLIES.append(tally)
    assert not tally.failures, "\n".join(f"{what}: {example}" for what, example in tally.failures.items())
    assert tally.server_errors == 0 and tally.requests > 0


def test_number_service(fuzz_mesh):
    url = url_of(fuzz_mesh, "numbers")
    auth = signed_as(fuzz_mesh, str(HUB), **{"/v1/enrol": "MUNI/012084/resident-registry"})
    passed(fuzz(Tally("numbers"), load(url), url, auth, stranger=MeshSignature(fuzz_mesh, STRANGER)))


@pytest.mark.parametrize("system", ["resident-registry", "child-allowance", "services"])
def test_agency_node(fuzz_mesh, system):
    url = url_of(fuzz_mesh, system)
    stranger = MeshSignature(fuzz_mesh, STRANGER)  # a member that must go through the hub
    passed(fuzz(Tally(system), load(url), url, signed_as(fuzz_mesh, str(HUB)), stranger=stranger))


def test_hub(fuzz_mesh):
    url = url_of(fuzz_mesh, "hub")
    auth = signed_as(
        fuzz_mesh,
        "MUNI/012084/child-allowance",
        **{"/v1/notify": "GOV/digital/services", "/v1/audit/records": "GOV/digital/portal"},
    )
    passed(fuzz(Tally("hub"), load(url), url, auth))


def test_witness(fuzz_mesh):
    """Its submissions carry the hub's signed checkpoint in the body (checked there), not an RFC 9421 signature."""
    url = url_of(fuzz_mesh, "witness")
    passed(fuzz(Tally("witness"), load(url), url, unsigned))


def in_session(cookies: dict, token: str):
    """The session's cookies and its form token on every request but logout (which would end the session)."""
    return {
        "cookies": lambda _m, path: {} if path == "/logout" else cookies,
        "form": lambda _m, path: {} if path == "/logout" else {"csrf": token},
    }


def test_portal(fuzz_mesh):
    """The resident's pages, as the first demo card's holder (no server error is what is checked: they are HTML),
    and the routes the hub calls, signed as the hub (checked as the signed parts are)."""
    url = url_of(fuzz_mesh, "portal")
    cookies, token = portal_session(fuzz_mesh, url)
    hub = MeshSignature(fuzz_mesh, str(HUB))
    auth = lambda method, path: hub if method == "POST" and path.startswith("/v1/") else None  # noqa: E731
    checks = lambda _method, path: CHECKS if path.startswith("/v1/") else [not_a_server_error]  # noqa: E731
    stranger = MeshSignature(fuzz_mesh, STRANGER)  # the portal answers the hub's calls only
    session = in_session(cookies, token)
    tally = fuzz(Tally("portal"), load(url), url, auth, **session, checks=checks, examples=5, stranger=stranger)
    assert httpx.get(url + "/settings", cookies=cookies).status_code == 200  # the fuzzing ran logged in throughout
    passed(tally)


def test_console(fuzz_mesh):
    """The staff pages, as a municipal reviewer, and the publish pages as an operator: no server error, and every
    answer one the document lists."""
    url = url_of(fuzz_mesh, "console")
    reviewer = in_session(*staff_session(fuzz_mesh, url, "reviewer.012084"))
    operator = in_session(*staff_session(fuzz_mesh, url, "operator.national"))
    staff = lambda path: operator if path.startswith("/publish") else reviewer  # noqa: E731
    tally = fuzz(
        Tally("console"),
        load(url),
        url,
        unsigned,
        cookies=lambda method, path: staff(path)["cookies"](method, path),
        form=lambda method, path: staff(path)["form"](method, path),
        examples=12,
    )
    for path in ("/queue", "/publish"):  # the fuzzing ran logged in throughout
        assert httpx.get(url + path, cookies=staff(path)["cookies"]("GET", path)).status_code == 200
    passed(tally)
