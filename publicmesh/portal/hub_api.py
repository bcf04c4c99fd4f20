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
from publicmesh.identity import IdentityError
from publicmesh.portal.account_pages import PRIOR_INTENT
from publicmesh.portal.core import Portal
from publicmesh.portal.deps import PortalDep
from publicmesh.portal.people import People
from publicmesh.portal.proxies import signers_of
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


def hub_call(path: str, *, arrow: bool = False) -> Callable[[Work], Work]:
    """Decorator: a hub-only POST route, its body verified as the hub's and its answer signed by the portal.
    The work gets the portal's parts and the JSON document, or, with ``arrow``, the body as it came (an Arrow IPC
    stream)."""

    def register_route(work: Work) -> Work:
        async def route(request: Request, portal: PortalDep, link: Annotated[HubLink, Depends(get_hub_link)]):
            body = await request.body()
            request_id = request.headers.get("mesh-request-id", "")
            try:
                link.verifier.verify_request("POST", path, request.headers, body)
            except SignatureError as exc:
                return Response(orjson.dumps({"detail": exc.detail}), 401, media_type="application/json")
            status, payload, media = work(portal, body if arrow else orjson.loads(body))
            return Response(
                payload, status, headers=link.signer.sign_response(status, payload, request_id), media_type=media
            )

        router.add_api_route(path, route, methods=["POST"], include_in_schema=False)
        return work

    return register_route


@hub_call("/v1/events")
def events(portal: Portal, doc: dict):
    people = portal.people
    accepted = 0
    for event in doc["events"]:
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


@hub_call("/v1/consents/check")
def check_consent(portal: Portal, asked: dict):
    people = portal.people
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
    status, payload = (
        (
            200,
            orjson.dumps(
                {
                    "consent": allowed.id,
                    "version": allowed.version,
                    "person_ref": allowed.person_ref,
                    "valid_until": allowed.valid_until.isoformat(),
                }
            ),
        )
        if allowed
        else (404, orjson.dumps({"detail": "no such consent in force for this recipient, dataset and purpose"}))
    )
    return status, payload, "application/json"


@hub_call("/v1/notices", arrow=True)
def push_notices(portal: Portal, body: bytes):
    people = portal.people
    try:
        table, routing = notices_wire.read_request(body)
    except notices_wire.MalformedNotices as exc:
        return 400, orjson.dumps({"detail": str(exc)}), "application/json"
    notices.send_table(people.notices, routing["sender"], table)
    flags = consent.prior_intent_mask(people.consents, PRIOR_INTENT, routing["service"], table.column("subject"))
    return 200, notices_wire.answer_body(flags, table.num_rows), notices_wire.ARROW_STREAM


@hub_call("/v1/query")
def signers(portal: Portal, doc: dict):
    if doc.get("dataset") != "signers" or "payload" in doc:
        return (
            404,
            orjson.dumps({"detail": "the portal answers single queries of signers only"}),
            "application/json",
        )
    found = signers_of(portal.people.identity, portal.sessions, doc["subject"], doc.get("attributes"))
    return 200, orjson.dumps({"subject": doc["subject"], "data": found, "protected": False}), "application/json"


@hub_call("/v1/bulk", arrow=True)
def public_fund_accounts(portal: Portal, body: bytes):
    try:  # the hub names the subjects in the Arrow form (bulk_wire); a scan is not served
        doc, column = bulk_wire.read_subjects(body, BULK_MAX_SUBJECTS)
    except bulk_wire.MalformedBulk as exc:
        return (
            400,
            orjson.dumps({"detail": f"the portal provides public-fund-account by subject: {exc}"}),
            "application/json",
        )
    if doc.get("dataset") != "public-fund-account":
        return (
            404,
            orjson.dumps({"detail": "the portal provides only public-fund-account, by subject"}),
            "application/json",
        )
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


@router.get("/v1/datasets", include_in_schema=False)
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
