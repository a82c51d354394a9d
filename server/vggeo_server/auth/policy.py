"""Who may see what: the scopes, the data each one opens, and a caller's :class:`Access`.

The classification is data, one entry per store table (a test checks that every table of the
store schema has one, so a table added later is refused until someone classifies it):

=====================  ======================  ==================================  =========================
table                  scope                   fields the scope alone opens        the other fields need
=====================  ======================  ==================================  =========================
residences             ``residences``          ``id``, ``cluster``, ``point_count``  ``residences:attributes``
provisions (+ the      ``provisions``          every field                         —
bestämmelse tables)
inskrivning tables,    ``inskrivning``         every field                         —
persons, organisations
=====================  ======================  ==================================  =========================

So a caller with ``residences`` but not ``residences:attributes`` sees where homes are and how
many (points, clusters with ``point_count``) but nothing about them: no home type, ownership,
year or municipality, no ``count_<home type>`` on clusters, no attribute filters (they would
reveal the attributes by elimination), and in OGC API – Features only the id and the geometry.
A caller without ``residences`` does not see residences at all: the layer answers 401/403, the
composite comes without it and no metadata document lists it.

Nothing the server exposes today is derived from inskrivning (the feature reader's allow-list
leaves those tables out); the scope exists so that whatever is added from them is closed by
default. ``metrics`` opens ``/metrics``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields

from vggeo.tiles.layers import Filters

__all__ = [
    "RESIDENCES",
    "RESIDENCE_ATTRIBUTES",
    "PROVISIONS",
    "INSKRIVNING",
    "METRICS",
    "SCOPES",
    "TablePolicy",
    "table_policy",
    "Access",
    "FULL_ACCESS",
    "AccessDenied",
    "Unauthenticated",
    "Forbidden",
]

RESIDENCES = "residences"
RESIDENCE_ATTRIBUTES = "residences:attributes"
PROVISIONS = "provisions"
INSKRIVNING = "inskrivning"
METRICS = "metrics"

#: Every scope, with what it opens (the keys CLI refuses any other name).
SCOPES: dict[str, str] = {
    RESIDENCES: "Residence locations: points, clusters and their counts, feature ids.",
    RESIDENCE_ATTRIBUTES: "Residence attributes (home type, ownership, year, municipality, the "
    "per-home-type cluster counts, attribute filters). Useful only together with `residences`.",
    PROVISIONS: "Land-regulating provisions (all regulations layers and collections).",
    INSKRIVNING: "Anything derived from inskrivning (ownership, acquisitions, rights).",
    METRICS: "The Prometheus metrics at /metrics.",
}


@dataclass(frozen=True)
class TablePolicy:
    """What reading one store table takes.

    Attributes
    ----------
    scope
        Needed to see the table's features at all.
    open_fields
        Fields that ``scope`` alone opens; ``None``: every field.
    fields_scope
        Needed, besides ``scope``, for every other field.
    """

    scope: str
    open_fields: frozenset[str] | None = None
    fields_scope: str | None = None


_INSKRIVNING_TABLES = (
    "inskrivningsfastighet",
    "agande",
    "forvarv",
    "avtalsrattighet",
    "inteckning",
    "anteckning",
    "tomtrattsupplatelse",
    "fang",
    "overlatelse",
    "persons",
    "organisations",
)

TABLE_POLICIES: dict[str, TablePolicy] = {
    "residences": TablePolicy(
        RESIDENCES, frozenset({"id", "cluster", "point_count"}), RESIDENCE_ATTRIBUTES
    ),
    "provisions": TablePolicy(PROVISIONS),
    "affected_properties": TablePolicy(PROVISIONS),
    "decisions": TablePolicy(PROVISIONS),
    **{t: TablePolicy(INSKRIVNING) for t in _INSKRIVNING_TABLES},
}
#: A table nobody classified: no scope opens it (the keys CLI never grants this name).
_UNCLASSIFIED = TablePolicy("unclassified", frozenset())

#: Attribute filter → (table, field) it reads.
FILTER_FIELDS: dict[str, tuple[str, str]] = {
    "home_type": ("residences", "home_type"),
    "ownership_type": ("residences", "ownership_type"),
    "construction_year_min": ("residences", "construction_year"),
    "construction_year_max": ("residences", "construction_year"),
    "provision_type": ("provisions", "provision_type"),
    "status": ("provisions", "status"),
}


def table_policy(table: str) -> TablePolicy:
    """The policy of a store table (an unclassified table is open to nobody)."""
    return TABLE_POLICIES.get(table, _UNCLASSIFIED)


class AccessDenied(Exception):
    """Base of the answers that refuse a caller (see :mod:`vggeo_server.auth.middleware`)."""

    status = 403

    def __init__(
        self,
        detail: str,
        *,
        error: str | None = None,
        scope: str | None = None,
        description: str | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.error = error
        self.scope = scope
        self.description = description


class Unauthenticated(AccessDenied):
    """401: no credentials where some are needed, or credentials that are not valid."""

    status = 401


class BadCredentials(AccessDenied):
    """400: credentials sent in a form we do not take (RFC 6750 ``invalid_request``)."""

    status = 400


class Forbidden(AccessDenied):
    """403: valid credentials without the scope needed (RFC 6750 ``insufficient_scope``)."""


@dataclass(frozen=True)
class Access:
    """The scopes of one caller.

    Attributes
    ----------
    scopes
        Granted scopes (the configured public scopes included).
    enforced
        False when access control is off: everything is open.
    authenticated
        True when the caller presented valid credentials (a refusal is then 403, not 401).
    principal
        Who, for the access log: ``key:<key id>`` or ``jwt:<digest of issuer and subject>``.
    """

    scopes: frozenset[str] = frozenset()
    enforced: bool = True
    authenticated: bool = False
    principal: str | None = None

    def has(self, scope: str) -> bool:
        return not self.enforced or scope in self.scopes

    def denial(self, scope: str, what: str) -> AccessDenied:
        """The refusal of ``what`` for want of ``scope``: 401 for an anonymous caller (credentials
        would help), 403 for an authenticated one."""
        if not self.authenticated:
            return Unauthenticated(f"{what} needs credentials (scope {scope!r})", scope=scope)
        return Forbidden(
            f"{what} needs scope {scope!r}, which your credentials do not grant",
            error="insufficient_scope",
            scope=scope,
        )

    def require(self, scope: str, what: str) -> None:
        if not self.has(scope):
            raise self.denial(scope, what)

    def can_read(self, table: str) -> bool:
        return self.has(table_policy(table).scope)

    def fields(self, table: str) -> frozenset[str] | None:
        """The fields of ``table`` this caller sees: ``None`` for all of them (callers who
        cannot read the table see none: check :meth:`can_read` first)."""
        policy = table_policy(table)
        if not self.has(policy.scope):
            return frozenset()
        if policy.open_fields is None or (policy.fields_scope and self.has(policy.fields_scope)):
            return None
        return policy.open_fields

    def field_scope(self, table: str, field: str) -> str | None:
        """The scope this caller lacks to see ``table.field``, or ``None`` when it is visible."""
        policy = table_policy(table)
        if not self.has(policy.scope):
            return policy.scope
        allowed = self.fields(table)
        if allowed is None or field in allowed:
            return None
        return policy.fields_scope or policy.scope

    def visible_columns(self, table: str, columns: Iterable[str]) -> list[str]:
        allowed = self.fields(table)
        return [c for c in columns if allowed is None or c in allowed]

    def check_filters(self, filters: Filters | Iterable[str]) -> None:
        """Refuse attribute filters (given parsed, or as the names of those given) on fields
        the caller cannot see: a filter on a hidden attribute would reveal it by elimination,
        and the answer to an invalid value lists the values the data holds."""
        if isinstance(filters, Filters):
            names = [
                f.name
                for f in fields(filters)
                if getattr(filters, f.name) not in (None, frozenset())
            ]
        else:
            names = list(filters)
        for name in names:
            if name not in FILTER_FIELDS:
                continue
            missing = self.field_scope(*FILTER_FIELDS[name])
            if missing is not None:
                raise self.denial(missing, f"the filter {name!r}")


#: Everything open: the access of every request when access control is off.
FULL_ACCESS = Access(scopes=frozenset(SCOPES), enforced=False)
