"""Consent (本人同意) and prior intents (事前の意思表示): signed, versioned, purpose-bound, revocable."""

from publicmesh.consent.model import (
    ACTIVE, ALL_SERVICES, EXPIRED, PRIOR_INTENT_KINDS, REVOKED, SUPERSEDED, Consent, PriorIntent, Purpose,
    StaleConsent,
)
from publicmesh.consent.schema import STORE, ensure_schema, open_store
from publicmesh.consent.service import (
    amend_consent, check_consent, consents_of, expire_consents, get_consent, give_consent, has_prior_intent, people_with_prior_intent,
    prior_intent_mask,
    history, prior_intents_of, record_prior_intent, revoke_consent, revoke_prior_intent,
)

__all__ = [
    "ACTIVE", "ALL_SERVICES", "EXPIRED", "PRIOR_INTENT_KINDS", "REVOKED", "STORE", "SUPERSEDED",
    "Consent", "PriorIntent", "Purpose", "StaleConsent",
    "amend_consent", "check_consent", "consents_of", "ensure_schema", "expire_consents", "get_consent",
    "give_consent", "has_prior_intent", "people_with_prior_intent", "prior_intent_mask", "history", "open_store", "prior_intents_of", "record_prior_intent",
    "revoke_consent", "revoke_prior_intent",
]
