"""What the hub calls on the portal, signed by the hub and answered signed by the portal.

- /v1/events: events the portal subscribes to; a move revokes the signing certificate and tells the person.
- /v1/notices: notices pushed by a service into inboxes, filed under the category the service names (a service
  the person can receive when it names none); answers who has a prior intent (事前の意思表示) for it.
- /v1/bulk (dataset public-fund-account): the registered receiving accounts (公金受取口座), for payouts.
- /v1/query (dataset signers): who may sign a person's applications: their own signing certificates in force, and
  their mandates to apply in force with their proxies' signing certificates (署名者・代理権の確認).
- /v1/consents/check: the portal holds the people's consents (it is their agent); the hub asks it for the
  consent a consent-based exchange names, and binds it to the query's subject itself (mesh/consents.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

import orjson
import pyarrow as pa
from cryptography import x509
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from publicmesh import accounts, consent, notices
from publicmesh.design.openapi import SIGNED_ONLY
from publicmesh.identity import IdentityError
from publicmesh.portal.account_pages import PRIOR_INTENT
from publicmesh.portal.core import Portal
from publicmesh.portal.deps import PortalDep
from publicmesh.portal.people import People
from publicmesh.portal.proxies import signers_of
from publicmesh.problems import PROBLEM_SCHEMA, PROBLEM_TYPES, Problem
from publicmesh.protocol import arrow_ipc, bulk_wire, notices_wire
from publicmesh.protocol.ca import read_private_key
from publicmesh.protocol.members import HUB, PORTAL
from publicmesh.protocol.schemas import BULK_MAX_SUBJECTS
from publicmesh.protocol.signatures import NonceStore, SignatureError, Signer, Verifier
from publicmesh.provider.datasets import Attribute, Dataset
from publicmesh.settings import Settings

log = logging.getLogger(__name__)
router = APIRouter()


_TEXT = {"type": "string"}
PUBLIC_FUND_ACCOUNT = Dataset(
    "public-fund-account",
    "公金受取口座",
    "Public-fund receiving account",
    (
        Attribute("bank_code", {"type": "string", "pattern": "^[0-9]{4}$"}, "金融機関コード", "Bank code", "account"),
        Attribute("branch_code", {"type": "string", "pattern": "^[0-9]{3}$"}, "支店コード", "Branch code", "account"),
        Attribute("account_type", {"type": "string", "enum": ["1", "2", "4"]}, "預金種目", "Account type", "account"),
        Attribute(
            "account_number", {"type": "string", "pattern": "^[0-9]{7}$"}, "口座番号", "Account number", "account"
        ),
        Attribute("holder_kana", _TEXT, "口座名義（カナ）", "Account holder (kana)", "account"),
    ),
    tenant_column=None,
)
SIGNERS = Dataset(
    "signers",
    "申請の署名者（本人・代理人）",
    "Who may sign the person's applications",
    (
        Attribute(
            "signing_certificates",
            {"type": "array", "items": {"type": "string"}},
            "本人の有効な署名用電子証明書（シリアル番号）",
            "The person's signing certificates in force (serials)",
            "identity",
        ),
        Attribute(
            "mandates",
            {"type": "array", "items": {"type": "object"}},
            "効力のある代理権と代理人の署名用電子証明書",
            "Mandates in force to apply, with each proxy's signing certificates",
            "identity",
        ),
    ),
    tenant_column=None,
)


@dataclass(frozen=True)
class HubLink:
    """How the portal knows the hub's calls (the hub's key) and answers them (the portal's key)."""

    verifier: Verifier
    signer: Signer

    @classmethod
    def for_settings(cls, settings: Settings, nonces: NonceStore | None = None) -> HubLink:
        """With ``nonces``, the hub's calls are refused when replayed even after the portal restarted."""
        keys = settings.keys_dir / "members"
        hub_key = x509.load_pem_x509_certificate((keys / f"{HUB.file_stem}.pem").read_bytes()).public_key()
        verifier = Verifier(
            lambda kid: hub_key if kid == str(HUB) else None, settings.signature_max_age_s, store=nonces
        )
        return cls(verifier, Signer(str(PORTAL), read_private_key(keys / f"{PORTAL.file_stem}.key")))


async def get_hub_link(request: Request) -> HubLink:
    return request.app.state.hub_link


Work = Callable[[Portal, Any], tuple[int, bytes, str]]
PROBLEM = "application/problem+json"
_PROBLEMS = {
    str(status): {"description": description, "content": {PROBLEM: {"schema": PROBLEM_SCHEMA}}}
    for status, description in (
        (400, "The body is not what the route takes"),
        (401, "Not signed by the hub (RFC 9421), stale or replayed"),
        (404, "Not a dataset or consent the portal holds"),
    )
}
_ARROW = {"type": "string", "contentMediaType": arrow_ipc.ARROW_STREAM}


def hub_call(path: str, summary: str, body: dict, answer: dict, *, arrow: bool = False) -> Callable[[Work], Work]:
    """Decorator: a hub-only POST route, its body verified as the hub's and its answer signed by the portal.
    The work gets the portal's parts and the JSON document, or, with ``arrow``, the body as it came (an Arrow IPC
    stream); a body it cannot read is a 400 problem. ``body`` and ``answer`` (media type → schema) document it."""

    def register_route(work: Work) -> Work:
        async def route(request: Request, portal: PortalDep, link: Annotated[HubLink, Depends(get_hub_link)]):
            body = await request.body()
            request_id = request.headers.get("mesh-request-id", "")
            try:
                link.verifier.verify_request("POST", path, request.headers, body)
            except SignatureError as exc:
                known = exc.reason in PROBLEM_TYPES and PROBLEM_TYPES[exc.reason].status == 401
                return Problem(exc.reason if known else "bad-signature", exc.detail).response(request_id)
            try:
                status, payload, media = work(portal, body if arrow else orjson.loads(body))
            except Problem as problem:
                status, payload, media = problem.status, problem.body(request_id), PROBLEM
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                malformed = Problem("malformed-request", f"{type(exc).__name__}: {exc}")
                status, payload, media = 400, malformed.body(request_id), PROBLEM
            return Response(
                payload, status, headers=link.signer.sign_response(status, payload, request_id), media_type=media
            )

        router.add_api_route(
            path,
            route,
            methods=["POST"],
            summary=summary,
            description="Called by the hub only: signed as the hub (RFC 9421), answered signed by the portal.",
            openapi_extra={
                "security": SIGNED_ONLY,
                "requestBody": {
                    "required": True,
                    "content": {arrow_ipc.ARROW_STREAM if arrow else "application/json": {"schema": body}},
                },
                "responses": {
                    "200": {"description": "Done", "content": {m: {"schema": s} for m, s in answer.items()}},
                    **_PROBLEMS,
                },
            },
        )
        return work

    return register_route


def _malformed(detail: str) -> Problem:
    return Problem("malformed-request", detail)


def _texts(doc: dict, names: tuple[str, ...]) -> None:
    if not all(isinstance(doc.get(name), str) for name in names):
        raise _malformed(f"{', '.join(names)} are texts")


_EVENT = {
    "type": "object",
    "required": ["idempotency_key", "type", "subject"],
    "properties": {
        "idempotency_key": {"type": "string"},
        "type": {"type": "string", "examples": ["move", "application-status"]},
        "subject": {"type": "string", "description": "The person under the portal's pseudonym"},
        "data": {"type": "object"},
    },
}
_COUNTS = {"application/json": {"type": "object", "required": ["accepted", "duplicates"]}}


@hub_call(
    "/v1/events",
    "Events the portal subscribes to (moves, application statuses)",
    {"type": "object", "required": ["events"], "properties": {"events": {"type": "array", "items": _EVENT}}},
    _COUNTS,
)
def events(portal: Portal, doc: dict):
    people = portal.people
    accepted = 0
    if not isinstance(doc, dict) or not isinstance(doc.get("events"), list):
        raise _malformed("the body is an object with a list of events")
    for event in doc["events"]:
        if not isinstance(event, dict) or not isinstance(event.get("data", {}), dict):
            raise _malformed("an event is an object, its data an object")
        _texts(event, ("idempotency_key", "type", "subject"))
        if event["type"] == "application-status":
            portal.status_feed.publish(event["subject"], event.get("data", {}))
        if event["type"] == "move" and people.directory.get(event["subject"]) is not None:
            people.identity.authority.on_address_change(event["subject"])
            notices.send(
                people.notices,
                notices.NoticeDraft(
                    person_ref=event["subject"],
                    sender=str(PORTAL),
                    category="security",
                    title_ja="署名用電子証明書が失効しました",
                    title_en="Your signing certificate was revoked",
                    body_ja="住所の変更（転居）により、法律に基づき署名用電子証明書が失効しました。"
                    "「設定」から利用者証明用電子証明書でログインしたまま新しい証明書を発行できます。",
                    body_en="Your move revoked your signing certificate, as the law requires. You can have a new one "
                    "issued in Settings while logged in with your card.",
                    links={"settings": "/settings#h-signing"},
                    idempotency_key=event["idempotency_key"],
                ),
            )
        accepted += 1
    return 200, orjson.dumps({"accepted": accepted, "duplicates": 0}), "application/json"


def signed_by_the_person(people: People, person_ref: str):
    """The consent signature check: the person's card signing key, chained to the JPKI root, not revoked."""

    def verify(content: bytes, signature: bytes) -> bool:
        for card in people.identity.cards.cards_of(person_ref):
            try:
                people.identity.authority.verify_signed_document(content, signature, card.signing_certificate_pem())
                return True
            except (IdentityError, ValueError):
                continue
        return False

    return verify


@hub_call(
    "/v1/consents/check",
    "The consent a consent-based exchange names, if it is in force for this recipient, dataset and purpose",
    {
        "type": "object",
        "required": ["consent", "recipient", "dataset", "purpose"],
        "properties": {n: {"type": "string"} for n in ("consent", "recipient", "dataset", "purpose")},
    },
    {"application/json": {"type": "object", "required": ["consent", "version", "person_ref", "valid_until"]}},
)
def check_consent(portal: Portal, asked: dict):
    people = portal.people
    if not isinstance(asked, dict):
        raise _malformed("the body is an object")
    _texts(asked, ("recipient", "dataset", "purpose"))
    try:
        found = consent.get_consent(people.consents, str(asked.get("consent", ""))[:64])
        allowed = found and consent.check_consent(
            people.consents,
            found.id,
            asked["recipient"],
            asked["dataset"],
            asked["purpose"],
            verify=signed_by_the_person(people, found.person_ref),
        )
    except (KeyError, ValueError) as exc:  # a malformed question or an unreadable (tampered) row allows nothing
        log.warning("consent check refused: %s", exc)
        allowed = None
    if not allowed:
        raise Problem("not-found", "no such consent in force for this recipient, dataset and purpose")
    answer = {
        "consent": allowed.id,
        "version": allowed.version,
        "person_ref": allowed.person_ref,
        "valid_until": allowed.valid_until.isoformat(),
    }
    return 200, orjson.dumps(answer), "application/json"


@hub_call(
    "/v1/notices",
    "Notices pushed by a service into inboxes; answers who has a prior intent for it",
    {**_ARROW, "description": "notices_wire: one notice a row; sender and service in the schema metadata"},
    {arrow_ipc.ARROW_STREAM: {**_ARROW, "description": "One column, prior_intent"}},
    arrow=True,
)
def push_notices(portal: Portal, body: bytes):
    people = portal.people
    try:
        table, routing = notices_wire.read_request(body)
    except notices_wire.MalformedNotices as exc:
        raise _malformed(str(exc)) from None
    notices.send_table(people.notices, routing["sender"], table)
    flags = consent.prior_intent_mask(people.consents, PRIOR_INTENT, routing["service"], table.column("subject"))
    return 200, notices_wire.answer_body(flags, table.num_rows), notices_wire.ARROW_STREAM


_SIGNERS = [a.name for a in SIGNERS.attributes]


@hub_call(
    "/v1/query",
    "Who may sign a person's applications (dataset signers)",
    {
        "type": "object",
        "required": ["dataset", "subject"],
        "properties": {
            "dataset": {"type": "string", "enum": ["signers"]},
            "subject": {"type": "string"},
            "attributes": {"type": "array", "items": {"type": "string", "enum": _SIGNERS}},
        },
    },
    {"application/json": {"type": "object", "required": ["subject", "data"]}},
)
def signers(portal: Portal, doc: dict):
    if not isinstance(doc, dict):
        raise _malformed("the body is an object")
    if doc.get("dataset") != "signers" or "payload" in doc:
        raise Problem("unknown-dataset", "the portal answers single queries of signers only")
    attributes = doc.get("attributes")
    _texts(doc, ("subject",))
    if attributes is not None and not (isinstance(attributes, list) and all(a in _SIGNERS for a in attributes)):
        raise _malformed(f"attributes are some of {', '.join(_SIGNERS)}")
    found = signers_of(portal.people.identity, portal.sessions, doc["subject"], doc.get("attributes"))
    return 200, orjson.dumps({"subject": doc["subject"], "data": found, "protected": False}), "application/json"


@hub_call(
    "/v1/bulk",
    "The registered public-fund receiving accounts (公金受取口座) of many people, for payouts",
    {**_ARROW, "description": "bulk_wire: one string column, subject; dataset and attributes in the metadata"},
    {arrow_ipc.ARROW_STREAM: {**_ARROW, "description": 'The accounts found; column "i" is the row asked'}},
    arrow=True,
)
def public_fund_accounts(portal: Portal, body: bytes):
    try:  # the hub names the subjects in the Arrow form (bulk_wire); a scan is not served
        doc, column = bulk_wire.read_subjects(body, BULK_MAX_SUBJECTS)
    except bulk_wire.MalformedBulk as exc:
        raise _malformed(f"the portal provides public-fund-account by subject: {exc}") from None
    if doc.get("dataset") != "public-fund-account":
        raise Problem("unknown-dataset", "the portal provides only public-fund-account, by subject")
    subjects = column.to_pylist()
    found = accounts.accounts_of_many(portal.people.accounts, subjects)
    index = [i for i, s in enumerate(subjects) if s in found]
    columns = {"i": pa.array(index, pa.int32()), "_protected": pa.array([False] * len(index), pa.bool_())}
    values = {
        "bank_code": lambda a: a.bank_code,
        "branch_code": lambda a: a.branch_code,
        "account_type": lambda a: a.type_code,
        "account_number": lambda a: a.account_number,
        "holder_kana": lambda a: a.holder_kana,
    }
    for name in doc.get("attributes") or list(values):
        columns[name] = pa.array([values[name](found[subjects[i]]) for i in index], pa.string())
    return 200, arrow_ipc.to_bytes(pa.table(columns)), arrow_ipc.ARROW_STREAM


@router.get("/v1/datasets")
async def datasets():
    """What the portal provides through the hub (the hub's catalog reads it): the public-fund accounts and
    who may sign the person's applications."""
    return {
        "system": PORTAL.system,
        "title_ja": "マイナポータル",
        "title_en": "Resident portal",
        "members": [str(PORTAL)],
        "datasets": [PUBLIC_FUND_ACCOUNT.describe(), SIGNERS.describe()],
    }
