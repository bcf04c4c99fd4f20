"""The portal's pages carry a Content-Security-Policy that allows no inline script and no framing, and its
templates have no inline script, style or event handler for that policy to block."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

from fastapi.testclient import TestClient

from publicmesh.portal import bootstrap

TEMPLATES = Path(bootstrap.__file__).parent / "templates"


def client() -> TestClient:
    portal = SimpleNamespace(sessions=SimpleNamespace(get=lambda _id: None))
    return TestClient(bootstrap.create_app(portal, bootstrap.templates(), hub_link=SimpleNamespace()))


def test_every_answer_has_the_policy_and_refuses_framing():
    browser = client()
    for path in ("/", "/static/portal.css", "/static/applications.js", "/no-such-page"):
        answer = browser.get(path, follow_redirects=False)
        policy = answer.headers["content-security-policy"]
        directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
        assert directives["script-src"] == "'self'" and directives["frame-ancestors"] == "'none'", path
        assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
        assert answer.headers["x-frame-options"] == "DENY" and answer.headers["x-content-type-options"] == "nosniff"


def test_no_template_has_an_inline_script_style_or_handler():
    for template in TEMPLATES.glob("*.html"):
        text = template.read_text(encoding="utf-8")
        scripts = re.findall(r"<script\b([^>]*)>", text)
        assert all("src=" in attributes for attributes in scripts), template.name
        assert not re.search(r"\sstyle=|<style\b|\son[a-z]+=|javascript:", text), template.name


def test_the_scripts_the_templates_load_are_served():
    browser = client()
    sources = {s for t in TEMPLATES.glob("*.html") for s in re.findall(r'<script src="([^"]+)"', t.read_text())}
    assert sources >= {"/static/wallet.js", "/static/applications.js"}
    for source in sources:
        assert browser.get(source).status_code == 200, source
