"""vggeo's tile server: a thin FastAPI layer over :mod:`vggeo.tiles` (``create_app(settings)``).

``create_app`` and ``Settings`` load on first use, so that the package's commands
(:mod:`vggeo_server.cli`) can be listed by ``vggeo --help`` without FastAPI installed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vggeo_server.app import create_app
    from vggeo_server.settings import Settings

__all__ = ["create_app", "Settings"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        # lazy: FastAPI is in the server extra; the package's commands list without it
        from vggeo_server.app import create_app

        return create_app
    if name == "Settings":
        # lazy: the settings' modules load FastAPI too
        from vggeo_server.settings import Settings

        return Settings
    raise AttributeError(f"module 'vggeo_server' has no attribute {name!r}")
