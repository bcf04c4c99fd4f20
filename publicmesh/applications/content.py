"""What a person signs (申請・取下げの署名対象): canonical JSON of an application, a resubmission or a withdrawal.
The portal builds it for the person's card or wallet to sign; the services part builds it again to verify."""

from __future__ import annotations

import hashlib

import orjson


def application_content(
    offer: dict,
    *,
    typed: dict | None = None,
    proxy: dict | None = None,
    resubmits: tuple[str, str] | None = None,
    reapplies: dict | None = None,
) -> bytes:
    """What the person signs: the service, the offer, every pre-filled value they saw and what they typed, canonical
    JSON. A proxy's also names the proxy (the name and serial of the signing certificate) and the mandate
    (``proxy``: name, certificate, mandate). A resubmission also names the application and the digest of the
    signature it replaces, so neither the first application's signature nor an earlier one can be sent again. An
    application after a withdrawal names the withdrawn one the same way (``reapplies``: application, supersedes),
    so the withdrawn application's signature cannot apply again in the person's name."""
    doc = {
        "type": "publicmesh/application",
        "service": offer["service_id"],
        "offer": offer["id"],
        "amount_yen": offer["amount_yen"],
        "form": offer["form"],
    }
    if typed:
        doc["typed"] = typed
    if reapplies is not None:
        doc["after_withdrawal"] = {"application": reapplies["application"], "supersedes": reapplies["supersedes"]}
    if proxy is not None:
        doc["proxy"] = {"name": proxy["name"], "certificate": proxy["certificate"]}
        doc["mandate"] = proxy["mandate"]
    if resubmits is not None:
        doc.update(type="publicmesh/resubmission", application=resubmits[0], supersedes=resubmits[1])
    return orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)


def withdrawal_content(application: dict, *, proxy: dict | None = None) -> bytes:
    """What the person signs to withdraw (取下げ): the application and its service; a proxy's also names the proxy
    and the mandate, as their application does."""
    doc = {"type": "publicmesh/withdrawal", "application": application["id"], "service": application["service_id"]}
    if proxy is not None:
        doc["proxy"] = {"name": proxy["name"], "certificate": proxy["certificate"]}
        doc["mandate"] = proxy["mandate"]
    return orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)


def signature_digest(signature: str | None) -> str:
    """The digest of a stored signed application, as a resubmission names it."""
    return hashlib.sha256((signature or "").encode()).hexdigest()
