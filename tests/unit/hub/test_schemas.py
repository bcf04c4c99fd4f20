"""The hub's request bodies: a notice's link can only be a page of the portal; its category is one the inbox
knows, and a sender that names none gets the category every notice had before there were others."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from publicmesh.protocol.schemas import NotifyRequest


def _notify(link: str | None, **more) -> NotifyRequest:
    return NotifyRequest.model_validate(
        {
            "provider": "GOV/digital/portal",
            "purpose": "service-notice",
            "service": "emergency-benefit",
            "notices": [
                {
                    "subject": "cdwN50YIflIJCf3lcEuNgw",
                    "key": "emergency-benefit:1",
                    "title_ja": "対象です",
                    "title_en": "You are eligible",
                    "body_ja": "本文",
                    "body_en": "Body",
                    "link": link,
                    **more,
                }
            ],
        }
    )


@pytest.mark.parametrize(
    "link",
    [
        "/applications/offers/4ac95c59143416b2",
        "/applications",
        "/notices#n-12",
        "/records?before=50",
        "/applications/4ac95c59143416b2/resubmit",
        "/",
        None,
    ],
)
def test_a_path_on_the_portal_is_a_link(link):
    assert _notify(link).notices[0].link == link


@pytest.mark.parametrize(
    "link",
    [
        "//evil.example",
        "//evil.example/applications",
        "///evil.example",
        "/\\evil.example",
        "https://evil.example/",
        "evil.example",
        "applications",
        "javascript:alert(1)",
        "/applications offers",
        "",
        "/" + "a" * 200,
    ],
)
def test_anything_else_is_refused(link):
    with pytest.raises(ValidationError):
        _notify(link)


def test_a_notice_without_a_category_is_about_a_service_the_person_can_receive():
    assert _notify("/applications").notices[0].category == "service-eligibility"


@pytest.mark.parametrize("category", ["service-eligibility", "application-decision", "payout", "account-request"])
def test_a_notice_carries_its_category(category):
    from publicmesh.notices import CATEGORIES

    assert _notify("/applications", category=category).notices[0].category == category
    assert category in CATEGORIES  # the inbox files it as sent


@pytest.mark.parametrize("category", ["security", "spam", "", None])
def test_other_categories_are_refused(category):
    with pytest.raises(ValidationError):
        _notify("/applications", category=category)
