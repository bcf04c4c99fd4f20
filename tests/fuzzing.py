"""Schemathesis against a part's OpenAPI document, on a running mesh of the fuzz tests' own: a bounded number of
examples per operation, derandomized (the same cases on every run), requests signed where the part needs it."""

from __future__ import annotations

import base64
import json
import os
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

import httpx
import pyarrow as pa
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from publicmesh.console.staff import totp
from publicmesh.protocol import arrow_ipc
from publicmesh.protocol.arrow_ipc import ARROW_STREAM
from publicmesh.protocol.ca import read_private_key
from publicmesh.protocol.members import MemberId
from publicmesh.protocol.signatures import Signer
from publicmesh.runtime.provision import provision
from publicmesh.runtime.seed import fresh_stores, seed
from publicmesh.runtime.supervisor import Supervisor
from publicmesh.runtime.topology import municipalities, part
from publicmesh.settings import Settings

MAX_EXAMPLES = int(os.environ.get("PUBLICMESH_FUZZ_EXAMPLES", 40))  # per operation and generation mode
TIMEOUT_S = 10  # an answer slower than this is a hang
RESIDENTS = 300
# The server-error check on every answer; conformance (documented statuses, media types, schemas) on valid requests.
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@schemathesis.serializer(ARROW_STREAM)
def arrow_body(_context, value) -> bytes:
    """What the fuzzer makes of an Arrow IPC body: the value's bytes, which are no Arrow stream (the parts' readers
    must refuse them as malformed), or, for a list of texts, a one-column stream of them."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return arrow_ipc.to_bytes(pa.table({"subject": pa.array(value, pa.string())}))
    return value.encode() if isinstance(value, str) else json.dumps(value).encode()


def start_mesh(data_dir, base_port: int) -> tuple[Settings, Supervisor]:
    """A small mesh of its own on SQLite: fuzzed requests change its stores, and no other test reads them."""
    settings = Settings(data_dir=data_dir, database_url="", base_port=base_port)
    fresh_stores(settings)
    provision(settings)
    seed(settings, RESIDENTS, municipalities(), 11)
    supervisor = Supervisor(settings)
    supervisor.start()
    return settings, supervisor


class MeshSignature(requests.auth.AuthBase):
    """Signs the request as it goes (RFC 9421, the member's key), with the member's certificate attached."""

    def __init__(self, settings: Settings, member: str):
        stem = MemberId.parse(member).file_stem
        keys = settings.keys_dir / "members"
        self.signer = Signer(member, read_private_key(keys / f"{stem}.key"))
        self.certificate = base64.b64encode((keys / f"{stem}.pem").read_bytes()).decode()

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        body = request.body or b""
        body = body.encode() if isinstance(body, str) else body
        request_id = request.headers.get("mesh-request-id") or uuid.uuid4().hex
        path = unquote(urlsplit(request.url or "").path)
        request.headers.update(self.signer.sign_request(request.method or "GET", path, body, request_id))
        request.headers["mesh-certificate"] = self.certificate
        return request


@dataclass
class Tally:
    """What one part's fuzzing sent and found."""

    part: str
    requests: int = 0
    server_errors: int = 0
    refused: int = 0  # of them, unsigned or signed by a member the part does not answer
    failures: dict[str, str] = field(default_factory=dict)  # what failed, once each → its first example

    def failed(self, what: str, example: str) -> None:
        self.failures.setdefault(what, example)

    def line(self) -> str:
        return (
            f"{self.part}: {self.requests} requests ({self.refused} to be refused), {self.server_errors} server errors"
        )


def fuzz(
    tally: Tally,
    schema,
    base_url: str,
    auth: Callable[[str, str], requests.auth.AuthBase | None],
    *,
    cookies: Callable[[str, str], dict] | None = None,
    form: Callable[[str, str], dict] | None = None,
    unsigned_examples: int = 5,
    stranger: requests.auth.AuthBase | None = None,
    checks: Callable[[str, str], list] = lambda _method, _path: CHECKS,
    examples: int = MAX_EXAMPLES,
) -> Tally:
    """Every operation of ``schema``, valid and invalid examples; ``auth(method, path)`` signs (or None), and a
    signed operation is also sent unsigned, which must be refused 401 as a problem, and signed by ``stranger`` (a
    member the part does not answer), refused 401 or 403. Every answer is checked for a
    server error, those to valid requests also with ``checks(method, path)`` (by default: documented status, media
    type and schema)."""
    session = requests.Session()
    for result in schema.get_all_operations():
        operation = result.ok()
        method, path = operation.method.upper(), operation.path
        signer = auth(method, path)
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            applied = checks(method, path) if mode is GenerationMode.POSITIVE else [not_a_server_error]

            @settings(
                max_examples=examples,
                derandomize=True,
                deadline=None,
                database=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy(generation_mode=mode))
            def send(case):
                if form is not None and isinstance(case.body, dict):
                    case.body.update(form(method, path))
                extra = {"cookies": cookies(method, path)} if cookies else {}
                started = time.monotonic()
                try:
                    response = case.call(base_url=base_url, session=session, auth=signer, timeout=TIMEOUT_S, **extra)
                except requests.exceptions.RequestException as exc:
                    tally.failed(f"{method} {path}: no answer in {TIMEOUT_S} s", type(exc).__name__)
                    return
                tally.requests += 1
                if response.status_code >= 500:
                    tally.server_errors += 1
                try:
                    case.validate_response(response, checks=applied)
                except FailureGroup as group:  # the checks' failures: kept, and the fuzzing goes on to see them all
                    tally.failed(
                        f"{method} {path} [{mode.value}] {response.status_code} "
                        + ", ".join(sorted({f.title for f in group.exceptions})),
                        f"{response.text[:300]!r} after {time.monotonic() - started:.2f} s",
                    )

            try:
                send()
            except Unsatisfiable:  # no invalid request exists (an operation without parameters or body)
                pass
        if signer is not None and unsigned_examples:
            refused(tally, operation, base_url, session, unsigned_examples, None, (401,))
            if stranger is not None:
                refused(tally, operation, base_url, session, unsigned_examples, stranger, (401, 403))
    return tally


def refused(tally: Tally, operation, base_url: str, session, examples: int, auth, statuses: tuple[int, ...]) -> None:
    """Valid examples sent unsigned (``auth`` None) or signed by a stranger: each must be a problem of
    ``statuses``."""

    @settings(max_examples=examples, derandomize=True, deadline=None, database=None, phases=[Phase.generate])
    @given(case=operation.as_strategy())
    def send(case):
        response = case.call(base_url=base_url, session=session, auth=auth, timeout=TIMEOUT_S)
        tally.requests += 1
        tally.refused += 1
        media = (response.headers.get("content-type") or [""])[0]
        if response.status_code not in statuses or not media.startswith("application/problem+json"):
            who = "a stranger's" if auth else "unsigned"
            tally.failed(
                f"{who} {operation.method.upper()} {operation.path}: {response.status_code}", response.text[:200]
            )

    send()


def load(url: str):
    """The part's OpenAPI document, as schemathesis reads it."""
    return schemathesis.openapi.from_url(url + "/openapi.json")


def portal_session(settings: Settings, portal_url: str) -> tuple[dict, str]:
    """A resident logged in to the portal with the first demo card: its cookies and the session's form token."""
    card = json.loads((settings.data_dir / "demo-cards.json").read_text("utf-8"))[0]
    with httpx.Client(base_url=portal_url, follow_redirects=False, timeout=30) as client:
        page = client.get("/login").text
        challenge = re.search(r'name="challenge" value="([^"]+)"', page).group(1)
        csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
        answer = client.post(
            "/login", data={"card": card["card_id"], "pin": "1234", "challenge": challenge, "csrf": csrf}
        )
        assert answer.status_code == 303, answer.text
        cookies = dict(client.cookies)
        token = re.search(r'name="csrf" value="([^"]+)"', client.get("/settings").text).group(1)
    return cookies, token


def staff_session(settings: Settings, console_url: str, username: str) -> tuple[dict, str]:
    """A staff member logged in to the console: its cookies and the session's form token."""
    accounts = {a["username"]: a for a in json.loads((settings.data_dir / "demo-staff.json").read_text("utf-8"))}
    account = accounts[username]
    secret = base64.b32decode(account["totp_secret"] + "=" * (-len(account["totp_secret"]) % 8))
    with httpx.Client(base_url=console_url, follow_redirects=False, timeout=30) as client:
        csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text).group(1)
        answer = client.post(
            "/login",
            data={
                "csrf": csrf,
                "username": username,
                "password": account["password"],
                "totp": totp(secret, time.time()),
            },
        )
        assert answer.status_code == 303, answer.text
        cookies = dict(client.cookies)
        page = client.get("/queue" if "operator" not in username else "/publish").text
    token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    return cookies, token


def url_of(settings: Settings, name: str) -> str:
    return part(settings, name).url(settings)
