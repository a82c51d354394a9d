"""Server configuration (pydantic-settings, prefix ``VGGEO_``), built once at start-up.

Every field can be set as an environment variable, e.g. ``VGGEO_STORE=/data/store.gpkg``,
``VGGEO_CORS_ORIGINS='["https://maps.example"]'``. Tests build ``Settings(_env_file=None, …)``.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from vggeo_server.auth.settings import AuthSettings
from vggeo_server.http import CacheControlPolicy
from vggeo_server.ops.settings import OpsSettings


class Settings(BaseSettings):
    """Settings of the tile server."""

    model_config = SettingsConfigDict(env_prefix="VGGEO_", extra="ignore")

    store: str | None = Field(
        None,
        description="GeoPackage/GeoParquet path, postgresql:// URL, or a .pmtiles/.mbtiles "
        "archive. Default: the bundled sample store.",
    )
    cors_origins: list[str] = Field(
        default_factory=lambda: ["*"],
        description="Origins allowed by CORS ([] disables CORS). "
        "With access control on, name them (`*` is refused: any web page could then use a "
        "visitor's key).",
    )
    store_schema: str = Field(
        "public",
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="PostGIS only: the database schema of the store (as `vggeo ingest --schema`).",
    )
    cache_bytes: int = Field(256 * 2**20, ge=0, description="Size bound of the tile cache.")
    cache_control: str = Field(
        "public, max-age=300",
        description="Cache-Control header of tile responses (for zooms "
        "`cache_control_zooms` does not name).",
    )
    cache_control_zooms: dict[str, str] = Field(
        default_factory=dict,
        description="Cache-Control of tile responses per zoom range, e.g. "
        '`{"0-8": "public, max-age=3600", "9-24": "public, no-cache"}` (JSON in '
        "VGGEO_CACHE_CONTROL_ZOOMS). Ranges are inclusive and may not overlap. `no-cache` (or "
        "`max-age=0, must-revalidate`) makes a CDN ask again every time; it gets 304 while the "
        "data version is unchanged, because tile ETags derive from it.",
    )
    reload_interval: float = Field(
        5.0,
        ge=0,
        description="Seconds between checks of the store's data version (0: never). "
        "With PostGIS the server also LISTENs for the ingest's notification and reloads at once; "
        "this poll is the fallback bound.",
    )
    listen: bool = Field(
        True,
        description="PostGIS only: LISTEN for ingests committed by any process "
        "(PostgreSQL NOTIFY) and reload within about a second.",
    )
    cluster_maxzoom: int = Field(14, ge=1, le=24, description="Residences cluster below this zoom.")
    minzoom: int = Field(0, ge=0, le=24, description="Lowest zoom advertised in TileJSON.")
    maxzoom: int = Field(16, ge=0, le=24, description="Highest zoom advertised in TileJSON.")
    warm: bool = Field(True, description="Build indexes at start-up instead of on first request.")
    pool_size: int = Field(
        8,
        ge=1,
        description="PostGIS: connections of each of a worker's two pools (event loop, threads).",
    )
    render_threads: int | None = Field(
        None,
        ge=1,
        description="Tiles rendered at once by one worker (more wait their turn, first come "
        "first served). Default: the number of cores (at least 2); with PostGIS twice that, of "
        "which at most the cores on the event loop (plain misses).",
    )
    base_url: str | None = Field(
        None,
        description="Public URL of the service (scheme, host, port and any path prefix), "
        "used in every link the server writes: TileJSON tile URLs, the style, OGC API links. "
        "Default: the bind address (`vggeo serve` sets it from --host/--port). Never taken from "
        "the request's Host header.",
    )
    features: bool = Field(
        True,
        description="Serve OGC API – Features (/collections/{id}/items) when the store is "
        "a vggeo store (GeoPackage or PostGIS).",
    )
    features_default_limit: int = Field(10, ge=1, description="Features per page by default.")
    features_max_limit: int = Field(
        10_000, ge=1, le=10_000, description="Largest `limit` accepted."
    )
    basemap: str = Field(
        "builtin",
        description="Basemap of the map page: `builtin` (offline, served by vggeo "
        "itself), `none`, or the URL of a MapLibre style to draw the data on (e.g. "
        "Lantmäteriet's or an OpenStreetMap style).",
    )
    basemap_archive: str | None = Field(
        None,
        description="PMTiles archive of the built-in basemap (`vggeo tiles basemap`). "
        "Default: the one shipped with vggeo (Sweden).",
    )

    auth: AuthSettings = Field(
        default_factory=AuthSettings,
        description="Access control (`VGGEO_AUTH_*`; off unless a keys file or a JWKS is set).",
    )
    ops: OpsSettings = Field(
        default_factory=OpsSettings, description="Access log, metrics, probes, shutdown."
    )

    @field_validator("base_url")
    @classmethod
    def _check_base_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        parts = urlsplit(value)
        if (
            parts.scheme not in ("http", "https")
            or not parts.netloc
            or parts.query
            or parts.fragment
        ):
            raise ValueError(
                f"base_url must be an http(s) URL without query, e.g. "
                f"https://maps.example/vggeo (got {value!r})"
            )
        return value.rstrip("/")

    @model_validator(mode="after")
    def _check_zooms(self) -> Settings:
        if self.minzoom > self.maxzoom:
            raise ValueError(f"minzoom ({self.minzoom}) is greater than maxzoom ({self.maxzoom})")
        if self.features_default_limit > self.features_max_limit:
            raise ValueError(
                f"features_default_limit ({self.features_default_limit}) is greater "
                f"than features_max_limit ({self.features_max_limit})"
            )
        if self.basemap not in ("builtin", "none") and not self.basemap.startswith(
            ("https://", "http://", "/")
        ):
            raise ValueError("basemap must be 'builtin', 'none' or a style URL (https://…)")
        if self.basemap_archive and not Path(self.basemap_archive).is_file():
            raise ValueError(f"basemap_archive {self.basemap_archive!r} is not a file")
        CacheControlPolicy(self.cache_control, self.cache_control_zooms)  # refuses bad ranges
        if self.auth.enabled and "*" in self.cors_origins:
            raise ValueError(
                "CORS origin '*' is refused with access control on: set "
                "VGGEO_CORS_ORIGINS to the origins of your map pages, e.g. "
                "'[\"https://maps.example\"]', or '[]' for none"
            )
        return self


def settings_error(err: ValidationError) -> str:
    """One line naming the setting(s) and what is wrong (never the value: it may be a secret)."""
    parts = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e.get("loc", ()))
        msg = str(e.get("msg", "invalid")).removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts) or "invalid settings"


def bind_url(host: str, port: int) -> str:
    """The base URL of a bind address; a wildcard address is reached as ``localhost``."""
    if host in ("0.0.0.0", "::", ""):
        host = "localhost"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}"
