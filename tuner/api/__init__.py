"""The REST API (FastAPI). Build it with :func:`tuner.api.app.create_app`.

This package's ``__init__`` imports nothing heavy, so that light modules such as
:mod:`tuner.api.tabular` stay importable by the client without FastAPI.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tuner.api.app import create_app
    from tuner.settings import Settings

__all__ = ["Settings", "create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from tuner.api.app import create_app

        return create_app
    if name == "Settings":
        from tuner.settings import Settings

        return Settings
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
