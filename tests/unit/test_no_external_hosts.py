"""No page of the mesh loads anything from another host: the templates, static files and the API docs pages name
only paths of the part that serves them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from publicmesh.design.api_docs import render

PACKAGE = Path(__file__).parents[2] / "publicmesh"
PAGES = sorted(
    p
    for p in PACKAGE.rglob("*")
    if p.suffix in (".html", ".js", ".css") and "bench" not in p.relative_to(PACKAGE).parts
)
# A URL in a src/href/action attribute, a CSS url(), an @import or a script's fetch/import that names a host.
EXTERNAL = re.compile(
    r"""(?:src|href|action)\s*=\s*["']?\s*(?:https?:)?//|url\(\s*["']?(?:https?:)?//|@import\s+["']?(?:https?:)?//"""
    r"""|(?:fetch|import)\(\s*["'](?:https?:)?//""",
    re.IGNORECASE,
)


def test_there_are_pages_to_check():
    names = {p.name for p in PAGES}
    assert {"base.html", "login.html", "wallet.js", "applications.js", "base.css"} <= names


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_a_page_names_no_other_host(page):
    text = page.read_text(encoding="utf-8")
    assert not EXTERNAL.search(text), EXTERNAL.search(text).group(0)


def test_the_api_docs_page_names_no_other_host():
    doc = {
        "info": {"title": "t", "version": "1", "description": "see https://example.org"},
        "paths": {"/v1/x": {"get": {"summary": "<script>alert(1)</script>", "responses": {"200": {}}}}},
    }
    page = render(doc, "/openapi.json")
    assert not EXTERNAL.search(page) and "<script>" not in page and "&lt;script&gt;" in page
