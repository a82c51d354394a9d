"""``vggeo registry load|check|fetch`` and ``vggeo sample registry``.

Results (reports, counts) go to stdout; progress and log lines to stderr. Every output file is
written to a temporary name and renamed into place, so an error or Ctrl-C leaves nothing
half-written.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Any, TextIO

import click

from vggeo.cli.options import overwrite_opt, progress_opt, refuse_overwrite

_out_opt = click.option(
    "-o",
    "--output",
    "output",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Output file: .parquet (GeoParquet), .gpkg (GeoPackage), .csv or .jsonl.",
)
_OUT_SUFFIXES = (".parquet", ".geoparquet", ".gpkg", ".csv", ".jsonl", ".ndjson")


def _check_suffix(path: Path) -> None:
    if path.suffix.lower() not in _OUT_SUFFIXES:
        raise click.BadParameter(
            f"{path.name}: choose the format by extension: {', '.join(_OUT_SUFFIXES)}",
            param_hint="-o/--output",
        )


def _show_warnings() -> None:
    """Print vggeo warnings as one 'vggeo: warning: …' line each on stderr."""

    def show(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: TextIO | None = None,
        line: str | None = None,
    ) -> None:
        click.echo(f"vggeo: warning: {message}", err=True)

    warnings.showwarning = show


@click.group("registry")
def registry() -> None:
    """Valueguard's residential registry: load, check, fetch from the API."""


_endpoint_opt = click.option(
    "--endpoint",
    type=click.Choice(["registry", "markups", "valuations"]),
    default="registry",
    show_default=True,
    help="API endpoint the rows come from: the registry-only rules (deleted 0 or 2, "
    "updated_from public_data) do not apply to markups.",
)
_strict_opt = click.option(
    "--strict",
    is_flag=True,
    help="Refuse the input (exit 2, nothing written) at the first value that is not of its "
    "type or breaks a documented rule, instead of nulling or flagging it.",
)
_rejects_opt = click.option(
    "--rejects",
    "rejects_path",
    default=None,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to list the rejected values (.csv, .jsonl or .parquet; written even when "
    "there are none). Default: <output name>.rejects.csv beside the output (with --store "
    "only: <source name>.rejects.csv here), written when there are rejects or that file "
    "exists from an earlier run (then replaced, so it is never stale).",
)


@registry.command("load")
@click.argument("source", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "-o",
    "--output",
    "output",
    default=None,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Output file: .parquet (GeoParquet), .gpkg (GeoPackage), .csv or .jsonl. "
    "Optional when --store is given.",
)
@overwrite_opt
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["jsonl", "json", "csv", "parquet", "gpkg"]),
    default=None,
    help="Input format (default: from the extension).",
)
@click.option(
    "--swap-axes",
    is_flag=True,
    help="Exchange detectably swapped coordinate pairs (with a warning) instead of "
    "rejecting them (or, for a whole file in the other order, refusing it).",
)
@_strict_opt
@click.option(
    "--strict-codes",
    is_flag=True,
    help="Refuse only values outside their code lists (the other rules as without --strict).",
)
@_rejects_opt
@_endpoint_opt
@click.option(
    "--store",
    "store",
    default=None,
    metavar="STORE",
    help="Also load the residences into this store (GeoPackage path or postgresql:// URL).",
)
@click.option(
    "--mode",
    type=click.Choice(["replace", "upsert"]),
    default="replace",
    show_default=True,
    help="How --store takes the rows.",
)
@progress_opt
def load(
    source: Path,
    output: Path | None,
    overwrite: bool,
    fmt: str | None,
    swap_axes: bool,
    strict: bool,
    strict_codes: bool,
    rejects_path: Path | None,
    endpoint: str,
    store: str | None,
    mode: str,
    progress: bool,
) -> None:
    """Read SOURCE (API pages, JSON lines, CSV, GeoParquet, GeoPackage) into the canonical form.

    Writes OUTPUT (EPSG:3006, typed columns, kommunkod, construction_year_placeholder,
    coord_source) and/or loads the residences into STORE (``--mode replace`` reloads all,
    ``--mode upsert`` updates by id), and prints a summary.

    Every row is kept. A value that is not of its documented type or breaks a documented rule
    is nulled or kept flagged (the rule says which) and listed in the rejects file with its row,
    rule and original value; ``--strict`` refuses the input instead. The input is read and
    checked completely before anything is written.

    Exit codes: 0 loaded (rejects, if any, listed); 2 refused (nothing written).
    """
    # lazy: keeps vggeo --help fast
    from vggeo.registry.readers import read_registry, write_registry
    from vggeo.registry.summary import coordinate_sources, rejects_summary
    from vggeo.registry.writers import default_rejects_path, save_rejects

    if output is None and store is None:
        raise click.UsageError("give -o/--output, --store, or both")
    if output is not None:
        _check_suffix(output)
        refuse_overwrite(output, overwrite)
    rej_path = rejects_path or default_rejects_path(output, source)
    if rejects_path is not None:
        refuse_overwrite(rej_path, overwrite)
    _show_warnings()
    gdf, rejects = read_registry(
        source,
        format=fmt,
        swap=swap_axes,
        strict=strict,
        strict_codes=strict_codes,
        endpoint=endpoint,
        progress=progress,
        with_rejects=True,
    )
    if output is not None:
        write_registry(gdf, output, overwrite=True)
    if store is not None:
        # lazy: keeps vggeo --help fast
        from vggeo.store import open_store

        with open_store(store, create=True) as st:
            st.load_residences(gdf, mode=mode, progress=progress)
    written = save_rejects(rejects, rej_path, explicit=rejects_path is not None)
    targets = " and ".join(str(t) for t in (output, store) if t is not None)
    click.echo(f"{len(gdf)} residences → {targets} (coordinates from: {coordinate_sources(gdf)})")
    click.echo(rejects_summary(rejects, written))
    if gdf.attrs.get("unknown_fields"):
        click.echo(f"unknown fields kept: {', '.join(gdf.attrs['unknown_fields'])}")


@registry.command("check")
@click.argument("source", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--threshold",
    type=float,
    default=5.0,
    show_default=True,
    help="Metres between coordinate pairs beyond which a row is reported.",
)
@click.option(
    "--entrance-floor",
    type=float,
    default=0.0,
    show_default=True,
    help="The 'floor' value of the entrance level when comparing with apartment numbers.",
)
@_endpoint_opt
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the machine-readable report (JSON): the same counts, status and exit_code.",
)
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the JSON report (all rows) to this file.",
)
@click.option(
    "--max-rows",
    type=int,
    default=10,
    show_default=True,
    help="Example rows per finding in the printed report.",
)
@click.option(
    "--fail/--no-fail",
    default=True,
    show_default=True,
    help="Exit with code 1 when problems are found (--no-fail: 0 whenever the check ran).",
)
def check(
    source: Path,
    threshold: float,
    entrance_floor: float,
    endpoint: str,
    as_json: bool,
    report_path: Path | None,
    max_rows: int,
    fail: bool,
) -> None:
    """Check SOURCE against every documented rule, and its coordinates.

    Problems: values of the wrong type or outside their code lists, broken ranges, formats and
    cross-field rules, impossible apartment numbers, apartment numbers twice at an address,
    coordinate pairs that disagree, are swapped, implausible or missing. Notices (counted, never
    a failure): construction years 1909/1929, floor estimates that differ from the apartment
    number, suspected errors, possibly deleted homes and other documented quirks.

    Exit codes: 0 no problems; 1 problems found; 2 SOURCE could not be checked (unreadable,
    not a registry, ids missing or repeated).
    """
    # lazy: keeps vggeo --help fast
    from vggeo.registry.checks import check_file

    rep = check_file(source, threshold=threshold, entrance_floor=entrance_floor, endpoint=endpoint)
    if report_path is not None:
        rep.write_json(report_path)
    if as_json:
        click.echo(rep.to_json(max_rows=max_rows))
    else:
        click.echo(rep.to_table(max_rows=max_rows))
    if fail and not rep.ok:
        sys.exit(rep.exit_code)


def _parse_criteria(items: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for item in items:
        if "=" not in item:
            raise click.BadParameter(
                f"{item!r}: write criteria as key=value", param_hint="--criteria"
            )
        k, v = item.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def _read_private_from_stdin(crit: dict[str, str]) -> None:
    """``SSN=-`` (or ``owner_id=-``): read the value from stdin, out of argv and shell history."""
    for name in ("SSN", "owner_id"):
        if crit.get(name) == "-":
            line = sys.stdin.readline().strip()
            if not line:
                raise click.UsageError(f"{name}=- reads the value from stdin, which was empty")
            crit[name] = line


@registry.command("fetch")
@click.argument("more_criteria", nargs=-1, metavar="[KEY=VALUE]...")
@_out_opt
@click.option(
    "--criteria",
    "-c",
    "criteria",
    multiple=True,
    metavar="KEY=VALUE",
    help="Search criterion (repeatable), e.g. -c county_code=05 -c rooms_min=2. "
    "address is matched as LIKE by the API (see --exact-address).",
)
@click.option(
    "--exact-address",
    is_flag=True,
    help="Keep only rows whose address matches the address criterion exactly "
    "(whole address, address without postal code, or street; case and spacing "
    "ignored): the API's LIKE also returns Storgatan for Torgatan.",
)
@click.option(
    "--special-access",
    is_flag=True,
    help="Allow the special criteria SSN (a personnummer; SSN=- reads it from stdin) "
    "and sensitive_data (0 or 1). Needs special access at Valueguard; their values "
    "are never logged or written to the resume state.",
)
@click.option(
    "--endpoint",
    type=click.Choice(["registry", "markups", "valuations"]),
    default="registry",
    show_default=True,
)
@click.option(
    "--resume",
    is_flag=True,
    help="Continue an interrupted fetch (same endpoint, page size and criteria) from "
    "its last complete page, staged in .<OUTPUT name>.parts/ beside OUTPUT.",
)
@click.option(
    "--incremental",
    is_flag=True,
    help="Fetch only rows updated since the newest updated_at in OUTPUT and merge them in.",
)
@click.option(
    "--updated-since",
    default=None,
    metavar="YYYY-MM-DD",
    help="Fetch only rows updated on or after this date (updated_at_min).",
)
@_strict_opt
@_rejects_opt
@click.option("--page-size", type=int, default=None, help="Rows per request (default 20000).")
@click.option(
    "--base-url",
    default=None,
    envvar="VGGEO_VALUEGUARD_BASE_URL",
    help="API base URL (default https://api.valueguard.se). Env: VGGEO_VALUEGUARD_BASE_URL.",
)
@progress_opt
def fetch(
    more_criteria: tuple[str, ...],
    output: Path,
    criteria: tuple[str, ...],
    exact_address: bool,
    special_access: bool,
    endpoint: str,
    resume: bool,
    incremental: bool,
    updated_since: str | None,
    strict: bool,
    rejects_path: Path | None,
    page_size: int | None,
    base_url: str | None,
    progress: bool,
) -> None:
    """Fetch the registry from Valueguard's API into OUTPUT.

    Search criteria go in as ``--criteria KEY=VALUE`` (repeatable) or as trailing KEY=VALUE
    arguments: ``--criteria county_code=05 rooms_min=2``. Unknown criteria are refused before
    any request.

    Settings come from the environment: VGGEO_VALUEGUARD_USERNAME and VGGEO_VALUEGUARD_PASSWORD
    (required; never printed or logged), VGGEO_VALUEGUARD_BASE_URL, …_PAGE_SIZE, …_TIMEOUT,
    …_CONNECT_TIMEOUT (10 s), …_MAX_RETRIES (6: seven attempts per request), …_BACKOFF,
    …_MAX_BACKOFF. A host that cannot be reached fails at once; other failures are retried
    with backoff, logged as "attempt k of n".

    Rows are checked like ``registry load``: rejected values are listed in the rejects file,
    ``--strict`` refuses instead. Exit codes: 0 fetched; 2 refused, unreachable or failed after
    the retries (nothing written; with --resume the complete pages are kept).
    """
    # lazy: keeps vggeo --help fast
    from vggeo.registry.client import ValueguardClient, ValueguardSettings, validate_criteria
    from vggeo.registry.summary import rejects_summary
    from vggeo.registry.writers import default_rejects_path, save_rejects

    _check_suffix(output)
    crit = _parse_criteria(criteria + more_criteria)
    if special_access:
        _read_private_from_stdin(crit)
    crit = validate_criteria(crit, allow_special=special_access)  # before any request
    rej_path = rejects_path or default_rejects_path(output)
    overrides: dict[str, Any] = {
        k: v for k, v in (("base_url", base_url), ("page_size", page_size)) if v
    }
    settings = ValueguardSettings(**overrides)
    with ValueguardClient(settings) as client:
        if incremental:
            result = client.fetch_incremental(
                output,
                endpoint=endpoint,
                criteria=crit,
                resume=resume,
                progress=progress,
                strict=strict,
                allow_special=special_access,
                exact_address=exact_address,
            )
        else:
            result = client.fetch_all(
                output,
                endpoint=endpoint,
                criteria=crit,
                resume=resume,
                updated_since=updated_since,
                progress=progress,
                allow_special=special_access,
                exact_address=exact_address,
                strict=strict,
            )
    written = save_rejects(result.rejects, rej_path, explicit=rejects_path is not None)
    click.echo(result.describe())
    click.echo(rejects_summary(result.rejects, written))


@click.command("registry")
@click.option("--n", "n", type=click.IntRange(min=0), required=True, help="Number of homes.")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
@_out_opt
@overwrite_opt
@click.option(
    "--defects",
    type=click.FloatRange(0, 0.1),
    default=0.0,
    show_default=True,
    help="Share of rows given a known problem (for trying out 'registry check').",
)
def sample_registry(n: int, seed: int, output: Path, overwrite: bool, defects: float) -> None:
    """Generate a realistic synthetic registry of N homes around real Swedish towns."""
    # lazy: keeps vggeo --help fast
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
    sample = group.commands["sample"]
    assert isinstance(sample, click.Group)
    sample.add_command(sample_registry)
