"""Access control: API keys and JWT bearer tokens, scopes per layer and per field.

Off unless configured (:class:`AuthSettings`). The pieces, each replaceable on its own:

* :mod:`~vggeo_server.auth.policy` — the scopes and what each opens (data, per store table);
  :class:`Access`, one caller's scopes;
* :mod:`~vggeo_server.auth.keys` — API keys hashed at rest, the keys file, ``vggeo keys``;
* :mod:`~vggeo_server.auth.tokens` — JWTs verified against a cached JWKS (PyJWT);
* :mod:`~vggeo_server.auth.middleware` — credentials → :class:`Access` on the request, the 400/401/403
  answers, ``Vary`` and ``Cache-Control: private``;
* :mod:`~vggeo_server.auth.views` — a caller's view of a layer, applied to tiles (and their cache)
  and to metadata documents.
"""

from vggeo_server.auth.middleware import Authenticator, AuthMiddleware, get_access
from vggeo_server.auth.policy import FULL_ACCESS, SCOPES, Access, AccessDenied
from vggeo_server.auth.settings import AuthSettings
from vggeo_server.auth.views import LayerView, layer_view

__all__ = [
    "AuthSettings",
    "Authenticator",
    "AuthMiddleware",
    "Access",
    "AccessDenied",
    "FULL_ACCESS",
    "SCOPES",
    "LayerView",
    "layer_view",
    "get_access",
]
