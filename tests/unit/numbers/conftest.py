"""A number service with real keys: the mesh CA, the service's own key, the hub's and a non-hub member's."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass

import pytest
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from starlette.testclient import TestClient

from publicmesh.numbers.bootstrap import bootstrap
from publicmesh.protocol.ca import MeshCA
from publicmesh.protocol.members import HUB, NUMBERS, MemberId
from publicmesh.protocol.outbound import Outbound
from publicmesh.protocol.signatures import Signer, Verifier
from publicmesh.protocol.trust import CERTIFICATE_HEADER, TrustStore, certificate_header
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
        return bootstrap(self.settings)


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


@pytest.fixture(scope="module")
def numbers_url(node):
    """The number service over real HTTP (uvicorn in a thread, on a port the OS picks)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(node.app(), log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def hub_outbound(node):
    """Makes the hub's outbound side, trusting the number service's certificate for its answers."""
    trust = TrustStore(x509.load_pem_x509_certificate((node.settings.keys_dir / "mesh-ca.pem").read_bytes()))
    trust.add_pem(node.numbers_pem)
    return lambda: Outbound(
        Signer(str(HUB), node.hub.key), certificate_header(node.hub.pem), Verifier(trust.key, 300), 30
    )
