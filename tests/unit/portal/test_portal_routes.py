"""The portal's routes: every (method, path) it served before its routers became APIRouter modules, in the same
order (a path two routes could match goes to the first: /applications/offers/resubmit is an offer)."""

from __future__ import annotations

from types import SimpleNamespace

from app_routes import app_routes

from publicmesh.portal import bootstrap

# Since issue 22 every part answers these first (publicmesh/design/observability.py).
HEALTH = [(m, p) for p in ("/healthz", "/readyz", "/metrics") for m in ("GET", "HEAD")]
BEFORE = [
    ("GET", "/openapi.json"),
    ("HEAD", "/openapi.json"),
    ("MOUNT", "/static/design"),
    ("MOUNT", "/static"),
    ("GET", "/"),
    ("GET", "/me"),
    ("GET", "/records"),
    ("GET", "/records/{position}.json"),
    ("GET", "/notices/{notice_id}/open"),
    ("GET", "/records/consistency"),  # added since: the browser's check of the log (portal/log_view.py)
    ("GET", "/applications"),
    ("GET", "/applications/offers/{offer_id}"),
    ("POST", "/applications/offers/{offer_id}"),
    ("GET", "/applications/{application_id}/resubmit"),
    ("POST", "/applications/{application_id}/resubmit"),
    ("GET", "/applications/{application_id}/withdraw"),
    ("POST", "/applications/{application_id}/withdraw"),
    ("GET", "/applications/events"),
    ("GET", "/login"),
    ("POST", "/login"),
    ("GET", "/login/challenge"),
    ("POST", "/login/wallet"),
    ("POST", "/logout"),
    ("POST", "/act-for"),
    ("GET", "/notices"),
    ("POST", "/notices/{notice_id}/read"),
    ("GET", "/settings"),
    ("POST", "/settings/account"),
    ("POST", "/settings/contact"),
    ("POST", "/settings/contact/confirm"),
    ("POST", "/settings/mandates"),
    ("POST", "/settings/mandates/{mandate_id}/revoke"),
    ("POST", "/settings/consents/{consent_id}/revoke"),
    ("POST", "/settings/prior-intent"),
    ("POST", "/settings/signing-certificate"),
    ("POST", "/settings/wallet"),
    ("POST", "/settings/wallets/{device_id}/revoke"),
    ("POST", "/v1/events"),
    ("POST", "/v1/consents/check"),
    ("POST", "/v1/notices"),
    ("POST", "/v1/query"),
    ("POST", "/v1/bulk"),
    ("GET", "/v1/datasets"),
]


def test_the_portal_serves_the_routes_it_served_before():
    app = bootstrap.create_app(SimpleNamespace(), bootstrap.templates(), hub_link=SimpleNamespace())
    assert app_routes(app) == HEALTH + BEFORE
