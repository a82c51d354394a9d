"""The owner-key secret a store keeps: made at creation, or the operator's.

Person keys are an HMAC under it (:func:`vggeo.lm.inskrivning.owner_key`); the store keeps it in
its metadata table and never exports it.
"""

from __future__ import annotations

import os
import secrets

from vggeo.errors import InputError

__all__ = ["OWNER_SECRET_ENV", "new_owner_secret"]

OWNER_SECRET_ENV = "VGGEO_OWNER_KEY_SECRET"


def new_owner_secret() -> str:
    """The owner-key secret for a new store: the operator's (:data:`OWNER_SECRET_ENV`) or random.

    Returned as text (stored in the store's metadata table, never exported).
    """
    given = os.environ.get(OWNER_SECRET_ENV)
    if given is not None and given.strip():
        if len(given.strip()) < 16:
            raise InputError(f"{OWNER_SECRET_ENV} must hold at least 16 characters")
        return given.strip()
    return secrets.token_hex(32)
