"""The look the resident portal and the staff console share: one stylesheet, served by each at /static/design."""

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"


def mount(app: FastAPI) -> None:
    """Serve the shared stylesheet at /static/design/base.css (mounted before the app's own /static)."""
    app.mount("/static/design", StaticFiles(directory=str(STATIC)), name="design")
