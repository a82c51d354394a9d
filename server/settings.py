"""Server configuration (pydantic-settings, prefix ``VGGEO_``), built once at start-up.

Every field can be set as an environment variable, e.g. ``VGGEO_STORE=/data/store.gpkg``,
``VGGEO_CORS_ORIGINS='["https://maps.example"]'``. Tests build ``Settings(_env_file=None, …)``.
"""

from __future__ import annotations

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Settings of the tile server."""

    model_config = SettingsConfigDict(env_prefix="VGGEO_", extra="ignore")

    store: str | None = Field(
        None, description="GeoPackage/GeoParquet path, postgresql:// URL, or a .pmtiles/.mbtiles "
        "archive. Default: the bundled sample store.")  # fmt: skip
    cors_origins: list[str] = Field(
        default_factory=lambda: ["*"], description="Origins allowed by CORS ([] disables CORS).")
    cache_bytes: int = Field(256 * 2**20, ge=0, description="Size bound of the tile cache.")
    cache_control: str = Field(
        "public, max-age=300", description="Cache-Control header of tile responses.")
    reload_interval: float = Field(
        5.0, ge=0, description="Seconds between checks of the store's data version (0: never).")
    cluster_maxzoom: int = Field(14, ge=1, le=24, description="Residences cluster below this zoom.")
    minzoom: int = Field(0, ge=0, le=24, description="Lowest zoom advertised in TileJSON.")
    maxzoom: int = Field(16, ge=0, le=24, description="Highest zoom advertised in TileJSON.")
    warm: bool = Field(True, description="Build indexes at start-up instead of on first request.")
    pool_size: int = Field(8, ge=1, description="PostGIS connection pool size.")

    @model_validator(mode="after")
    def _check_zooms(self) -> Settings:
        if self.minzoom > self.maxzoom:
            raise ValueError(f"minzoom ({self.minzoom}) is greater than maxzoom ({self.maxzoom})")
        return self
