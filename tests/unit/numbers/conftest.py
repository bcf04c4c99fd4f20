"""A number service with real keys: the mesh CA, the service's own key, the hub's and a non-hub member's."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from starlette.testclient import TestClient

from publicmesh.mesh.ca import MeshCA
from publicmesh.mesh.members import HUB, MemberId
from publicmesh.mesh.signatures import Signer
from publicmesh.mesh.trust import CERTIFICATE_HEADER, certificate_header
from publicmesh.numbers.app import NUMBERS, create_app
from publicmesh.runtime.provision import member_key
from publicmesh.settings import Settings

STRANGER = MemberId("MUNI", "012084", "child-allowance")


@dataclass
class Member:
    id: MemberId
    key: Ed25519PrivateKey
    pem: str

    def headers(self, path: str, body: bytes, content_type: str, request_id: str = "r1") -> dict[str, str]:
        """Signed request headers, carrying the certificate as the hub's outbound calls do."""
        headers = Signer(str(self.id), self.key).sign_request("POST", path, body, request_id)
        headers[CERTIFICATE_HEADER] = certificate_header(self.pem)
        headers["content-type"] = content_type
        return headers


@dataclass
class NumbersNode:
    settings: Settings
    hub: Member
    stranger: Member
    numbers_pem: str

    def app(self):
        return create_app(self.settings)


@pytest.fixture(scope="module")
def node(tmp_path_factory) -> NumbersNode:
    settings = Settings(data_dir=tmp_path_factory.mktemp("numbers"))
    ca = MeshCA.load_or_create(settings.keys_dir)
    members = {m: Member(m, *member_key(settings, ca, m)) for m in (HUB, STRANGER)}
    _, numbers_pem = member_key(settings, ca, NUMBERS)
    return NumbersNode(settings, members[HUB], members[STRANGER], numbers_pem)


@pytest.fixture(scope="module")
def http(node):
    with TestClient(node.app()) as client:
        yield client
