"""The hub's request bodies: a notice's link can only be a page of the portal."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from publicmesh.mesh.schemas import NotifyRequest


def _notify(link: str | None) -> NotifyRequest:
    return NotifyRequest.model_validate({
        "provider": "GOV/digital/portal", "purpose": "service-notice", "service": "emergency-benefit",
        "notices": [{"subject": "cdwN50YIflIJCf3lcEuNgw", "key": "emergency-benefit:1", "title_ja": "対象です",
                     "title_en": "You are eligible", "body_ja": "本文", "body_en": "Body", "link": link}]})


@pytest.mark.parametrize("link", ["/applications/offers/4ac95c59143416b2", "/applications", "/notices#n-12",
                                  "/records?before=50", "/", None])
def test_a_path_on_the_portal_is_a_link(link):
    assert _notify(link).notices[0].link == link


@pytest.mark.parametrize("link", ["//evil.example", "//evil.example/applications", "///evil.example",
                                  "/\\evil.example", "https://evil.example/", "evil.example", "applications",
                                  "javascript:alert(1)", "/applications offers", "", "/" + "a" * 200])
def test_anything_else_is_refused(link):
    with pytest.raises(ValidationError):
        _notify(link)
