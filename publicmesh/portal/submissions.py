"""Signing what the person confirmed with their card's signing key (署名用電子証明書) and submitting it through
the hub: an application, a corrected application (再提出) or a withdrawal."""

from __future__ import annotations

import base64
import logging

from publicmesh.identity import CardError, WrongPin, basic_information, load_certificate
from publicmesh.identity.certificates import serial_hex
from publicmesh.identity.mandates import reference as mandate_reference
from publicmesh.portal.core import Portal
from publicmesh.portal.i18n import translate
from publicmesh.portal.sessions import Session
from publicmesh.problems import Problem

log = logging.getLogger(__name__)


class Refused(Exception):
    """A signed submission that did not go through: what to tell the person on the form, and the HTTP status."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.message, self.status = message, status


def signer(portal: Portal, session: Session):
    """The card that signs: the person's own (a proxy's own, never the principal's); and for a proxy, what the
    signed content names: the proxy, as their signing certificate does, and the mandate they act under."""
    card = portal.people.identity.cards.cards_of(session.actor_ref)[0]
    if not session.acting_for:
        return card, None
    certificate = load_certificate(card.signing_certificate_pem())
    try:
        name = basic_information(certificate).name
    except ValueError:
        name = session.actor_name
    return card, {
        "name": name,
        "certificate": serial_hex(certificate.serial_number),
        "mandate": mandate_reference(session.mandate_id or ""),
    }


def sign(card, content: bytes, password: str) -> dict:
    signature = card.sign_document(content, password)
    return {
        "content": base64.b64encode(content).decode(),
        "signature": base64.b64encode(signature).decode(),
        "certificate": card.signing_certificate_pem(),
    }


async def submit_signed(
    portal: Portal, session: Session, card, content: bytes, password: str, payload: dict, lang: str
) -> dict:
    """Signs ``content`` with the card's signing key and submits it through the hub with ``payload``; a wrong
    password (401), a locked card or the services part's refusal (422) raise Refused, to show on the form."""
    try:
        signed = sign(card, content, password)
    except WrongPin as exc:
        raise Refused(translate("wrong_pin", lang, n=exc.tries_left), 401) from None
    except CardError as exc:
        log.warning("refused: %s's card did not sign (%s)", session.actor_ref, exc)
        raise Refused(str(exc), 422) from None
    try:
        return await portal.mesh.submit(session.subject_ref, {**payload, "signed": signed})
    except Problem as problem:
        log.warning("refused: the submission of %s for %s (%s)", session.actor_ref, session.subject_ref, problem.detail)
        raise Refused(problem.detail, 422) from None
