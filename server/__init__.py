"""vggeo's tile server: a thin FastAPI layer over :mod:`vggeo.tiles` (``create_app(settings)``)."""

from server.app import create_app
from server.settings import Settings

__all__ = ["create_app", "Settings"]
