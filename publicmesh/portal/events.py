"""Events the portal subscribes to through the hub: a move revokes the signing certificate and tells the person."""

from __future__ import annotations

import orjson
from cryptography import x509
from fastapi import FastAPI, Request
from fastapi.responses import Response

from publicmesh import notices
from publicmesh.mesh.ca import read_private_key
from publicmesh.mesh.members import HUB, PORTAL
from publicmesh.mesh.signatures import SignatureError, Signer, Verifier


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
