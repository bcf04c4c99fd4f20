"""The scale-out topology on one machine: with replicas, the hub and the portal run as numbered replicas on ports
of their own and HAProxy takes the parts' ports; with one (the embedded default) nothing changes."""

from __future__ import annotations

from publicmesh.runtime.proxy import config
from publicmesh.runtime.topology import part, parts, processes, replica_of
from publicmesh.settings import Settings


def test_one_replica_is_the_embedded_topology(tmp_path):
    settings = Settings(data_dir=tmp_path, base_port=8700)
    assert processes(settings) == parts(settings)


def test_replicas_run_behind_the_proxy_on_the_parts_ports(tmp_path):
    settings = Settings(data_dir=tmp_path, base_port=8700, replicas=2)
    names = [p.name for p in processes(settings)]
    assert names[:6] == ["numbers", "witness", "hub-1", "hub-2", "haproxy", "portal-1"]
    assert "hub" not in names and "portal" not in names and "portal-2" in names
    assert part(settings, "haproxy").port == part(settings, "hub").port == 8701  # the registry's address for HUB
    assert {part(settings, "hub-1").port, part(settings, "hub-2").port} == {8801, 8802}
    assert (
        replica_of("hub-2") == "hub" and replica_of("portal-1") == "portal" and replica_of("local-tax") == "local-tax"
    )
    text = config(settings)
    assert "bind 127.0.0.1:8701" in text and "bind 127.0.0.1:8702" in text
    assert "server hub-1 127.0.0.1:8801 check" in text and "server portal-2 127.0.0.1:8812 check" in text
    assert "retry-on conn-failure" in text and "option httpchk GET /healthz" in text
