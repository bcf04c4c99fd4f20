"""What the hub calls on the portal, signed by the hub and answered signed by the portal.

- /v1/events: events the portal subscribes to; a move revokes the signing certificate and tells the person.
- /v1/consents/check: the portal holds the people's consents (it is their agent); the hub asks it for the
  consent a consent-based exchange names, and binds it to the query's subject itself (mesh/consents.py).
"""

from __future__ import annotations

import logging

import orjson
from cryptography import x509
from fastapi import FastAPI, Request
from fastapi.responses import Response

from publicmesh import consent, notices
from publicmesh.identity import IdentityError
from publicmesh.mesh.ca import read_private_key
from publicmesh.mesh.members import HUB, PORTAL
from publicmesh.mesh.signatures import SignatureError, Signer, Verifier

log = logging.getLogger(__name__)


def register(app: FastAPI, portal) -> None:
    keys = portal.settings.keys_dir / "members"
    hub_key = x509.load_pem_x509_certificate((keys / f"{HUB.file_stem}.pem").read_bytes()).public_key()
    verifier = Verifier(lambda kid: hub_key if kid == str(HUB) else None, portal.settings.signature_max_age_s)
    signer = Signer(str(PORTAL), read_private_key(keys / f"{PORTAL.file_stem}.key"))
    people = portal.identity

    @app.post("/v1/events", include_in_schema=False)
    async def events(request: Request):
        body = await request.body()
        request_id = request.headers.get("mesh-request-id", "")
        try:
            verifier.verify_request("POST", "/v1/events", request.headers, body)
        except SignatureError as exc:
            return Response(orjson.dumps({"detail": exc.detail}), 401, media_type="application/json")
        accepted = 0
        for event in orjson.loads(body)["events"]:
            if event["type"] == "move" and people.directory.get(event["subject"]) is not None:
                people.identity.authority.on_address_change(event["subject"])
                notices.send(people.notices, notices.NoticeDraft(
                    person_ref=event["subject"], sender=str(PORTAL), category="security",
                    title_ja="署名用電子証明書が失効しました", title_en="Your signing certificate was revoked",
                    body_ja="住所の変更（転居）により、法律に基づき署名用電子証明書が失効しました。"
                            "「設定」から利用者証明用電子証明書でログインしたまま新しい証明書を発行できます。",
                    body_en="Your move revoked your signing certificate, as the law requires. You can have a new one "
                            "issued in Settings while logged in with your card.",
                    links={"settings": "/settings#h-signing"}, idempotency_key=event["idempotency_key"]))
            accepted += 1
        payload = orjson.dumps({"accepted": accepted, "duplicates": 0})
        return Response(payload, 200, headers=signer.sign_response(200, payload, request_id), media_type="application/json")

    def signed_by_the_person(person_ref: str):
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

    @app.post("/v1/consents/check", include_in_schema=False)
    async def check_consent(request: Request):
        body = await request.body()
        request_id = request.headers.get("mesh-request-id", "")
        try:
            verifier.verify_request("POST", "/v1/consents/check", request.headers, body)
        except SignatureError as exc:
            return Response(orjson.dumps({"detail": exc.detail}), 401, media_type="application/json")
        asked = orjson.loads(body)
        try:
            found = consent.get_consent(people.consents, str(asked.get("consent", ""))[:64])
            allowed = found and consent.check_consent(
                people.consents, found.id, asked["recipient"], asked["dataset"], asked["purpose"],
                verify=signed_by_the_person(found.person_ref))
        except (KeyError, ValueError) as exc:  # a malformed question or an unreadable (tampered) row allows nothing
            log.warning("consent check refused: %s", exc)
            allowed = None
        status, payload = (200, orjson.dumps({"consent": allowed.id, "version": allowed.version,
                                              "person_ref": allowed.person_ref,
                                              "valid_until": allowed.valid_until.isoformat()})) if allowed \
            else (404, orjson.dumps({"detail": "no such consent in force for this recipient, dataset and purpose"}))
        return Response(payload, status, headers=signer.sign_response(status, payload, request_id),
                        media_type="application/json")
