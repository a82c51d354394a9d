"""``vggeo registry load|check|fetch`` and ``vggeo sample registry``.

Results (reports, counts) go to stdout; progress and log lines to stderr. Every output file is
written to a temporary name and renamed into place, so an error or Ctrl-C leaves nothing
half-written.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import click

from vggeo.cli.options import overwrite_opt, progress_opt, refuse_overwrite

_out_opt = click.option(
    "-o", "--output", "output", required=True, type=click.Path(dir_okay=False, path_type=Path),
    help="Output file: .parquet (GeoParquet), .gpkg (GeoPackage), .csv or .jsonl.",
)  # fmt: skip
_OUT_SUFFIXES = (".parquet", ".geoparquet", ".gpkg", ".csv", ".jsonl", ".ndjson")


def _check_suffix(path: Path) -> None:
    if path.suffix.lower() not in _OUT_SUFFIXES:
        raise click.BadParameter(
            f"{path.name}: choose the format by extension: {', '.join(_OUT_SUFFIXES)}",
            param_hint="-o/--output",
        )


def _show_warnings():
    """Print vggeo warnings as one 'vggeo: warning: …' line each on stderr."""

    def show(message, category, filename, lineno, file=None, line=None):
        click.echo(f"vggeo: warning: {message}", err=True)

    warnings.showwarning = show


@click.group("registry")
def registry() -> None:
    """Valueguard's residential registry: load, check, fetch from the API."""


@registry.command("load")
@click.argument("source", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_out_opt
@overwrite_opt
@click.option("--format", "fmt", type=click.Choice(["jsonl", "json", "csv", "parquet", "gpkg"]),
              default=None, help="Input format (default: from the extension).")
@click.option("--swap-axes", is_flag=True,
              help="Exchange detectably swapped coordinate pairs (with a warning) instead of failing.")
@click.option("--strict-codes", is_flag=True,
              help="Fail on a value outside its code list (default: keep it and warn).")
@click.option("--store", "store", default=None, metavar="STORE",
              help="Also load the residences into this store (GeoPackage path or postgresql:// URL).")
@click.option("--mode", type=click.Choice(["replace", "upsert"]), default="replace",
              show_default=True, help="How --store takes the rows.")
@progress_opt
def load(source: Path, output: Path, overwrite: bool, fmt: str | None, swap_axes: bool,
         strict_codes: bool, store: str | None, mode: str, progress: bool) -> None:  # fmt: skip
    """Read SOURCE (API pages, JSON lines, CSV, GeoParquet, GeoPackage) into the canonical form.

    Writes OUTPUT (EPSG:3006, typed columns, coord_source) and prints a one-line summary.
    """
    from vggeo.registry.readers import read_registry, write_registry

    _check_suffix(output)
    refuse_overwrite(output, overwrite)
    _show_warnings()
    gdf = read_registry(source, format=fmt, swap=swap_axes, strict_codes=strict_codes,
                        progress=progress)  # fmt: skip
    write_registry(gdf, output, overwrite=True)
    if store is not None:
        from vggeo.store import open_store

        open_store(store, create=True).load_residences(gdf, mode=mode)
    counts = gdf["coord_source"].value_counts(dropna=False)
    parts = ", ".join(f"{k if isinstance(k, str) else 'none'} {v}" for k, v in counts.items() if v)
    click.echo(f"{len(gdf)} residences → {output} (coordinates from: {parts or 'none'})")
    if gdf.attrs.get("unknown_fields"):
        click.echo(f"unknown fields kept: {', '.join(gdf.attrs['unknown_fields'])}")


@registry.command("check")
@click.argument("source", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--threshold", type=float, default=5.0, show_default=True,
              help="Metres between coordinate pairs beyond which a row is reported.")
@click.option("--entrance-floor", type=float, default=0.0, show_default=True,
              help="The 'floor' value of the entrance level when comparing with apartment numbers.")
@click.option("--json", "as_json", is_flag=True, help="Print the machine-readable report (JSON).")
@click.option("--report", "report_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Also write the JSON report (all rows) to this file.")
@click.option("--max-rows", type=int, default=10, show_default=True,
              help="Example rows per finding in the printed report.")
@click.option("--fail/--no-fail", default=False, show_default=True,
              help="Exit with code 1 when problems are found.")
def check(source: Path, threshold: float, entrance_floor: float, as_json: bool,
          report_path: Path | None, max_rows: int, fail: bool) -> None:  # fmt: skip
    """Check SOURCE: conflicting coordinates, bad apartment numbers, unknown codes, fields."""
    from vggeo.registry.checks import check_registry
    from vggeo.registry.readers import atomic_path, read_registry

    with warnings.catch_warnings():
        # The report lists unknown codes, missing coordinates and unknown fields itself.
        warnings.simplefilter("ignore")
        gdf = read_registry(source)
    rep = check_registry(gdf, threshold=threshold, entrance_floor=entrance_floor)
    if report_path is not None:
        with atomic_path(report_path) as tmp:
            tmp.write_text(rep.to_json(max_rows=None), encoding="utf-8")
    if as_json:
        click.echo(rep.to_json(max_rows=max_rows))
    else:
        click.echo(rep.to_table(max_rows=max_rows))
    if fail and not rep.ok:
        sys.exit(1)


def _parse_criteria(items: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for item in items:
        if "=" not in item:
            raise click.BadParameter(f"{item!r}: write criteria as key=value", param_hint="--criteria")
        k, v = item.split("=", 1)
        out[k.strip()] = v.strip()
    return out


@registry.command("fetch")
@click.argument("more_criteria", nargs=-1, metavar="[KEY=VALUE]...")
@_out_opt
@click.option("--criteria", "-c", "criteria", multiple=True, metavar="KEY=VALUE",
              help="Search criterion (repeatable), e.g. -c county_code=05 -c rooms_min=2.")
@click.option("--endpoint", type=click.Choice(["registry", "markups", "valuations"]),
              default="registry", show_default=True)
@click.option("--resume", is_flag=True, help="Continue an interrupted fetch from its last page.")
@click.option("--incremental", is_flag=True,
              help="Fetch only rows updated since the newest updated_at in OUTPUT and merge them in.")
@click.option("--updated-since", default=None, metavar="YYYY-MM-DD",
              help="Fetch only rows updated on or after this date (updated_at_min).")
@click.option("--page-size", type=int, default=None, help="Rows per request (default 20000).")
@click.option("--base-url", default=None, envvar="VGGEO_VALUEGUARD_BASE_URL",
              help="API base URL. Env: VGGEO_VALUEGUARD_BASE_URL.")
@progress_opt
def fetch(more_criteria: tuple[str, ...], output: Path, criteria: tuple[str, ...], endpoint: str,
          resume: bool,
          incremental: bool, updated_since: str | None, page_size: int | None,
          base_url: str | None, progress: bool) -> None:  # fmt: skip
    """Fetch the registry from Valueguard's API into OUTPUT.

    Search criteria go in as ``--criteria KEY=VALUE`` (repeatable) or as trailing KEY=VALUE
    arguments: ``--criteria county_code=05 rooms_min=2``. Unknown criteria are refused before
    any request.

    Credentials come from VGGEO_VALUEGUARD_USERNAME and VGGEO_VALUEGUARD_PASSWORD and are never
    printed or logged.
    """
    from vggeo.registry.client import ValueguardClient, ValueguardSettings, validate_criteria

    _check_suffix(output)
    crit = validate_criteria(_parse_criteria(criteria + more_criteria))  # before any request
    overrides = {k: v for k, v in (("base_url", base_url), ("page_size", page_size)) if v}
    settings = ValueguardSettings(**overrides)
    with ValueguardClient(settings) as client:
        if incremental:
            result = _incremental(client, output, endpoint=endpoint, criteria=crit,
                                  resume=resume, progress=progress)  # fmt: skip
        else:
            result = client.fetch_all(output, endpoint=endpoint, criteria=crit, resume=resume,
                                      updated_since=updated_since, progress=progress)  # fmt: skip
    click.echo(f"{result.rows} rows → {result.output} ({result.pages} pages, {result.passes} "
               f"pass(es), {result.retries} retries"
               + (f", resumed at offset {result.resumed_from}" if result.resumed_from else "")
               + ")")  # fmt: skip


def _incremental(client, output: Path, *, endpoint, criteria, resume, progress):
    """Fetch rows updated since OUTPUT's newest ``updated_at`` and upsert them by id."""
    import pandas as pd

    from vggeo.errors import InputError
    from vggeo.registry.readers import read_registry, write_registry

    if not output.exists():
        raise InputError("--incremental needs an existing OUTPUT to update", file=str(output))
    old = read_registry(output)
    if "updated_at" not in old or old["updated_at"].isna().all():
        raise InputError("OUTPUT has no updated_at dates to continue from", file=str(output))
    since = old["updated_at"].max().date().isoformat()  # inclusive: the boundary day again
    delta_path = output.with_name(f".{output.stem}.delta{output.suffix}")
    result = client.fetch_all(delta_path, endpoint=endpoint, criteria=criteria, resume=resume,
                              updated_since=since, progress=progress)  # fmt: skip
    new = read_registry(delta_path)
    merged = pd.concat([old[~old["id"].isin(new["id"])], new], ignore_index=True)
    from vggeo.registry.readers import to_canonical

    merged = to_canonical(pd.DataFrame(merged.drop(columns=["geometry", "coord_source"])),
                          source=str(output))  # fmt: skip
    write_registry(merged, output)
    delta_path.unlink(missing_ok=True)
    result.output, result.rows = output, len(merged)
    return result


@click.command("registry")
@click.option("--n", "n", type=click.IntRange(min=0), required=True, help="Number of homes.")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
@_out_opt
@overwrite_opt
@click.option("--defects", type=click.FloatRange(0, 0.1), default=0.0, show_default=True,
              help="Share of rows given a known problem (for trying out 'registry check').")
def sample_registry(n: int, seed: int, output: Path, overwrite: bool, defects: float) -> None:
    """Generate a realistic synthetic registry of N homes around real Swedish towns."""
    from vggeo.registry.readers import write_registry
    from vggeo.sample.registry import generate_registry

    _check_suffix(output)
    refuse_overwrite(output, overwrite)
    gdf = generate_registry(n, seed=seed, defects=defects)
    write_registry(gdf, output, overwrite=True)
    click.echo(f"{len(gdf)} residences → {output}")


def register(group: click.Group) -> None:
    """Add this area's commands to the main group (and to group.commands['sample'])."""
    group.add_command(registry)
    group.commands["sample"].add_command(sample_registry)
