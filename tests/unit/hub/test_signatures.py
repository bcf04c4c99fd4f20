import base64
import time

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from http_message_signatures import HTTPMessageSigner, HTTPMessageVerifier, HTTPSignatureKeyResolver, algorithms

from publicmesh.protocol import signatures
from publicmesh.protocol.signatures import REQUEST_COMPONENTS, SignatureError, Signer, Verifier, content_digest

MEMBER = "MUNI/012084/child-allowance"
BODY = b'{"provider":"MUNI/012084/resident-registry","dataset":"person"}'


@pytest.fixture
def key():
    return Ed25519PrivateKey.generate()


@pytest.fixture
def verifier(key):
    return Verifier(lambda kid: key.public_key() if kid == MEMBER else None, max_age_s=30)


def test_a_signed_request_verifies_once(key, verifier):
    headers = Signer(MEMBER, key).sign_request("POST", "/v1/query", BODY, "r1")
    assert verifier.verify_request("POST", "/v1/query", headers, BODY) == MEMBER
    with pytest.raises(SignatureError) as replay:
        verifier.verify_request("POST", "/v1/query", headers, BODY)
    assert replay.value.reason == "replayed"


@pytest.mark.parametrize(
    "change, reason",
    [
        (lambda h: {k: v for k, v in h.items() if k != "signature"}, "missing-signature"),
        (lambda h: {**h, "mesh-request-id": "other"}, "bad-signature"),
        (
            lambda h: {**h, "signature-input": h["signature-input"].replace(MEMBER, "MUNI/012084/local-tax")},
            "unknown-key",
        ),
    ],
)
def test_tampered_headers_are_refused(key, verifier, change, reason):
    headers = Signer(MEMBER, key).sign_request("POST", "/v1/query", BODY, "r1")
    with pytest.raises(SignatureError) as refused:
        verifier.verify_request("POST", "/v1/query", change(headers), BODY)
    assert refused.value.reason == reason


def test_a_changed_body_or_path_is_refused(key, verifier):
    headers = Signer(MEMBER, key).sign_request("POST", "/v1/query", BODY, "r1")
    with pytest.raises(SignatureError) as body:
        verifier.verify_request("POST", "/v1/query", headers, BODY + b" ")
    assert body.value.reason == "digest-mismatch"
    with pytest.raises(SignatureError) as path:
        verifier.verify_request("POST", "/v1/bulk", headers, BODY)
    assert path.value.reason == "bad-signature"


def test_a_signature_by_another_key_is_refused(verifier):
    headers = Signer(MEMBER, Ed25519PrivateKey.generate()).sign_request("POST", "/v1/query", BODY, "r1")
    with pytest.raises(SignatureError) as refused:
        verifier.verify_request("POST", "/v1/query", headers, BODY)
    assert refused.value.reason == "bad-signature"


def test_a_stale_signature_is_refused(key, verifier, monkeypatch):
    real = time.time
    monkeypatch.setattr(signatures.time, "time", lambda: real() - 120)
    headers = Signer(MEMBER, key).sign_request("POST", "/v1/query", BODY, "r1")
    monkeypatch.setattr(signatures.time, "time", real)
    with pytest.raises(SignatureError) as refused:
        verifier.verify_request("POST", "/v1/query", headers, BODY)
    assert refused.value.reason == "stale-signature"


def test_an_answer_is_bound_to_its_request(key, verifier):
    headers = Signer(MEMBER, key).sign_response(200, b"{}", "r1")
    assert verifier.verify_response(200, headers, b"{}", "r1") == MEMBER
    with pytest.raises(SignatureError):
        verifier.verify_response(200, headers, b"{}", "r2")
    with pytest.raises(SignatureError):
        verifier.verify_response(500, headers, b"{}", "r1")


class _Message:
    def __init__(self, headers):
        self.method, self.url, self.headers = "POST", "http://127.0.0.1:8701/v1/query", dict(headers)


class _Keys(HTTPSignatureKeyResolver):
    def __init__(self, key):
        self.key = key

    def resolve_public_key(self, key_id):
        return self.key.public_key()

    def resolve_private_key(self, key_id):
        return self.key


def test_interoperates_with_the_reference_library_both_ways(key, verifier):
    ours = Signer(MEMBER, key).sign_request("POST", "/v1/query", BODY, "r1")
    results = HTTPMessageVerifier(signature_algorithm=algorithms.ED25519, key_resolver=_Keys(key)).verify(
        _Message(ours), body=BODY, require_components=REQUEST_COMPONENTS
    )
    assert results[0].parameters["keyid"] == MEMBER

    theirs = _Message({"mesh-request-id": "r2"})
    HTTPMessageSigner(signature_algorithm=algorithms.ED25519, key_resolver=_Keys(key)).sign(
        theirs, key_id=MEMBER, nonce="n-1", label="mesh", covered_component_ids=REQUEST_COMPONENTS, body=BODY
    )
    headers = {k.lower(): v for k, v in theirs.headers.items()}
    assert verifier.verify_request("POST", "/v1/query", headers, BODY) == MEMBER


def test_a_signature_is_the_one_the_key_itself_makes_of_the_signature_base(key):
    # Signed through libsodium for speed: the same bytes as the key's own (OpenSSL) signature, Ed25519 being
    # deterministic, over the signature base RFC 9421 defines.
    headers = Signer("MUNI/012084/child-allowance", key).sign_response(200, b"{}", "r-1")
    params = headers["signature-input"].removeprefix("mesh=")
    base = (
        f'"@status": 200\n"content-digest": {content_digest(b"{}")}\n"mesh-request-id": r-1\n'
        f'"@signature-params": {params}'
    ).encode()
    assert headers["signature"] == f"mesh=:{base64.b64encode(key.sign(base)).decode()}:"


def test_a_part_without_a_nonce_store_refuses_what_was_signed_before_it_started(key, monkeypatch):
    """Its nonces of that time died with the process before it: a request captured then is a possible replay."""
    headers = Signer(MEMBER, key).sign_request("POST", "/v1/query", BODY, "r1")
    real = time.time
    monkeypatch.setattr(signatures.time, "time", lambda: real() + 2)  # the part restarts two seconds later
    restarted = Verifier(lambda kid: key.public_key() if kid == MEMBER else None, max_age_s=30)
    with pytest.raises(SignatureError) as refused:
        restarted.verify_request("POST", "/v1/query", headers, BODY)
    assert refused.value.reason == "replayed"
    fresh = Signer(MEMBER, key).sign_request("POST", "/v1/query", BODY, "r2")
    assert restarted.verify_request("POST", "/v1/query", fresh, BODY) == MEMBER
