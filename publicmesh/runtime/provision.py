"""Provisioning: the mesh CA, a certified key for every member, and the hub's member registry."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from publicmesh.hub import registry
from publicmesh.population.places import municipality
from publicmesh.protocol.ca import MeshCA, certificate_pem, read_private_key, write_private_key
from publicmesh.protocol.members import MemberId
from publicmesh.runtime.catalog import AGENCIES
from publicmesh.runtime.topology import parts
from publicmesh.settings import Settings
from publicmesh.storage import engine_for


def member_key(settings: Settings, ca: MeshCA, member: MemberId) -> tuple[Ed25519PrivateKey, str]:
    """The member's key and certificate, created and certified on first use."""
    folder = settings.keys_dir / "members"
    key_path, cert_path = folder / f"{member.file_stem}.key", folder / f"{member.file_stem}.pem"
    if key_path.exists() and cert_path.exists():
        return read_private_key(key_path), cert_path.read_text()
    key = Ed25519PrivateKey.generate()
    write_private_key(key_path, key)
    pem = certificate_pem(ca.issue(member, key.public_key()))
    cert_path.write_text(pem)
    return key, pem


def _titles(member: MemberId) -> tuple[str, str]:
    agency = AGENCIES.get(member.system)
    if agency is None:
        return {
            "hub": ("公共サービスメッシュ ハブ", "Mesh hub"),
            "numbers": ("番号管理", "Number service"),
            "portal": ("マイナポータル", "Resident portal"),
        }.get(member.system, (member.system, member.system))
    if member.member_class == "MUNI":
        try:
            place = municipality(member.code)
            return f"{place.name} {agency.title_ja}", f"{agency.title_en}, {member.code}"
        except KeyError:
            pass
    return agency.title_ja, agency.title_en


def provision(settings: Settings, extra_members: tuple[MemberId, ...] = ()) -> MeshCA:
    """Idempotent: keys and certificates are made once; the registry is brought up to date."""
    ca = MeshCA.load_or_create(settings.keys_dir)
    engine = engine_for("hub", settings)
    for p in parts(settings):
        for member in p.members:
            _, pem = member_key(settings, ca, member)
            title_ja, title_en = _titles(member)
            registry.register(engine, member, p.url(settings), pem, ca.certificate, title_ja, title_en)
    for member in extra_members:
        _, pem = member_key(settings, ca, member)
        registry.register(engine, member, "", pem, ca.certificate, member.system, member.system)
    engine.dispose()
    return ca
