"""``vggeo inspect``, ``vggeo read`` and ``vggeo sample delivery``: Lantmäteriet deliveries."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from vggeo.cli.options import overwrite_opt, progress_opt, refuse_overwrite

if TYPE_CHECKING:
    import pandas as pd


def _inspect_data(path: Path) -> dict:
    """Everything ``inspect`` reports, as a JSON-able dict (the integrity error kept aside)."""
    from collections import Counter

    from vggeo.errors import IntegrityError
    from vggeo.lm import open_delivery
    from vggeo.lm.bestammelse import read_bestammelser
    from vggeo.lm.inskrivning import read_inskrivning

    with open_delivery(path) as d:
        info: dict = {
            "path": str(path),
            "form": d.form,
            "product": d.product,
            "information_types": d.information_types,
            "extract_type": d.extract_type,
            "extract_id": d.extract_id,
            "previous_extract_id": d.previous_extract_id,
            "produced_at": d.produced_at.isoformat() if d.produced_at else None,
            "crs": f"EPSG:{d.crs}" if d.crs else None,
            "checksum": d.checksum,
            "sets": {},
        }
        problem = None
        counts: dict = {}
        if not d.metadata:
            # A bare data file or set ZIP: nothing to verify against, which is not a failure.
            info["integrity"] = "not checked: no metadata file in this delivery"
        else:
            try:
                counts = d.verify()
                info["integrity"] = "ok"
            except IntegrityError as err:
                problem = err
                info["integrity"] = f"FAILED: {err}"
        unmapped: Counter = Counter()
        for s in d.sets:
            md = d.metadata.get(s)
            files = {}
            for f in d.files(s):
                if f.kind == "metadata":
                    continue
                n = counts.get(s, {}).get(f.name)
                files[f.name] = {
                    "kind": f.kind,
                    "objects": n if n is not None else d.count_objects(f),
                    "bytes": f.size,
                }
            entry = {"files": files, "deletions": len(d.deletions(s))}
            if md is not None:
                entry["metadata"] = {
                    "subsets": md.subsets,
                    "selection_type": md.selection_type,
                    "selection": md.selection,
                    "total_count": md.total_count,
                    "direct_marketing": md.direct_marketing,
                    "exclude_personnummer": md.exclude_personnummer,
                }
                unmapped.update({f"{s}_metadata.xml: {k}": v for k, v in md.unmapped.items()})
            if d.data_files(s):
                if d.product == "bestammelse":
                    try:  # objects recognised against the metadata's counts
                        data = read_bestammelser(d, set_name=s, on_geometry_error="keep")
                    except IntegrityError as err:
                        problem = problem or err
                        info["integrity"] = f"FAILED: {err}"
                        data = read_bestammelser(
                            d, set_name=s, on_geometry_error="keep", check_counts=False
                        )
                    entry["tables"] = {k: len(v) for k, v in data.tables().items()}
                    entry["geometry_errors"] = [f"{i}: {m}" for i, m in data.geometry_errors]
                else:
                    data = read_inskrivning(d, sets=[s])
                    entry["tables"] = {k: len(v) for k, v in data.tables().items()}
                unmapped.update({f"{s}: {k}": v for k, v in data.unmapped.items()})
            info["sets"][s] = entry
        info["unmapped_elements"] = dict(sorted(unmapped.items()))
    return info, problem


def _print_inspect(info: dict) -> None:
    w = click.echo
    w(f"delivery:      {info['path']} ({info['form']})")
    w(f"product:       {info['product']}")
    w(f"types:         {', '.join(info['information_types'])}")
    w(f"extract type:  {info['extract_type'] or 'unknown'}")
    w(f"extract id:    {info['extract_id'] or '-'}")
    w(f"follows:       {info['previous_extract_id'] or '-'}")
    w(f"produced at:   {info['produced_at'] or '-'}")
    w(f"crs:           {info['crs'] or '-'}")
    w(f"checksum:      sha256:{info['checksum']}")
    w(f"integrity:     {info['integrity']}")
    w("sets:")
    for s, e in info["sets"].items():
        w(f"  {s}:")
        for name, f in e["files"].items():
            w(
                f"    {name:45s} {f['kind']:9s} {f['objects']:>8} objects {f['bytes'] or 0:>12} bytes"
            )
        if "metadata" in e:
            m = e["metadata"]
            w(
                f"    subsets: {', '.join(m['subsets']) or '-'}; selection: {m['selection_type'] or '-'} "
                f"({len(m['selection'])} values)"
            )
        w(f"    deletions: {e['deletions']}")
        for t, n in e.get("tables", {}).items():
            w(f"    table {t}: {n} rows")
        for g in e.get("geometry_errors", []):
            w(f"    geometry error: {g}")
    un = info["unmapped_elements"]
    w(f"unmapped elements: {'none' if not un else ''}")
    for k, v in un.items():
        w(f"  {k}  ({v}×)")


@click.command("inspect")
@click.argument("delivery", type=click.Path(exists=True, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead of text.")
def inspect_cmd(delivery: Path, as_json: bool) -> None:
    """Show what a Lantmäteriet DELIVERY holds: product, extract, sets, counts, CRS, integrity,
    and every XML element the mapping did not use.

    DELIVERY is the outer ZIP, an unpacked folder, an inner set ZIP or one XML file. Exits with
    code 2 (after printing) when the delivery does not match its metadata.
    """
    info, problem = _inspect_data(delivery)
    if as_json:
        click.echo(json.dumps(info, indent=2, ensure_ascii=False))
    else:
        _print_inspect(info)
    if problem is not None:
        raise problem


def _deletions(d) -> pd.DataFrame | None:
    """The deletions table of a change extract (or of any delivery listing deletions)."""
    import pandas as pd

    dels = [(s, i) for s in d.sets for i in sorted(d.deletions(s))]
    if d.extract_type == "change" or dels:
        return pd.DataFrame(dels, columns=["set", "object_id"]).astype("string")
    return None


@click.command("read")
@click.argument("delivery", type=click.Path(exists=True, path_type=Path))
@click.option(
    "-o",
    "--output",
    "output",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="OUT.gpkg (one layer per table) or OUT.parquet (one table, GeoParquet).",
)
@click.option(
    "--table",
    default=None,
    help="Parquet only: the table to write (default: provisions; agande for inskrivning).",
)
@click.option(
    "--personal-data",
    is_flag=True,
    help="Keep personnummer, names and addresses (inskrivning). Default: redacted.",
)
@click.option(
    "--keep-bad-geometry",
    is_flag=True,
    help="Keep provisions with malformed geometry (empty geometry, listed on stderr) "
    "instead of failing.",
)
@click.option(
    "--workers",
    type=click.IntRange(0),
    default=1,
    show_default=True,
    help="Processes per large data file (0 = one per core, at most 4). The default "
    "already uses two cores on files of 8 MB or more; more processes pay off only "
    "on more idle cores, and cost memory.",
)
@overwrite_opt
@progress_opt
def read_cmd(
    delivery: Path,
    output: Path,
    table: str | None,
    personal_data: bool,
    keep_bad_geometry: bool,
    workers: int,
    overwrite: bool,
    progress: bool,
) -> None:
    """Read a Lantmäteriet DELIVERY (any form, also one data XML file) into OUT.gpkg or OUT.parquet.

    GeoPackage: one layer per table; the provisions layer has MultiPolygon geometry in
    EPSG:3006 and the provision_id column. Parquet: the provisions table (or --table).
    """

    from vggeo.errors import InputError
    from vggeo.exports.tables import GpkgLayers, write_gpkg_layers, write_table
    from vggeo.frames import categoricals_as_text
    from vggeo.lm import open_delivery
    from vggeo.lm.bestammelse import iter_bestammelser, read_bestammelser
    from vggeo.lm.inskrivning import read_inskrivning

    suffix = output.suffix.lower()
    if suffix not in (".gpkg", ".parquet"):
        raise click.UsageError("-o must end in .gpkg or .parquet")
    refuse_overwrite(output, overwrite)
    tables: dict[str, pd.DataFrame] = {}
    rows: dict[str, int] = {}
    with open_delivery(delivery) as d:
        streamed = d.product == "bestammelse" and suffix == ".gpkg"
        if streamed:
            # Part by part into the GeoPackage: memory bounded by a part, not by the delivery.
            # The file appears only if the whole read (its final checks included) succeeds.
            stream = iter_bestammelser(
                d,
                progress=progress,
                workers=workers or None,
                on_geometry_error="keep" if keep_bad_geometry else "raise",
            )
            with GpkgLayers(output, geometry_type="MultiPolygon") as gpkg:
                for part in stream:
                    for name, frame in part.tables().items():
                        gpkg.append(name, frame)
                dels = _deletions(d)
                if dels is not None:
                    gpkg.append("deletions", dels)
            rows = dict(gpkg.rows)
            for ident, msg in stream.geometry_errors:
                click.echo(f"vggeo: kept {ident} with an empty geometry: {msg}", err=True)
            unmapped = stream.unmapped
            product = d.product
        else:
            if d.product == "bestammelse":
                data = read_bestammelser(
                    d,
                    progress=progress,
                    workers=workers or None,
                    on_geometry_error="keep" if keep_bad_geometry else "raise",
                )
                tables.update(data.tables())
                for ident, msg in data.geometry_errors:
                    click.echo(f"vggeo: kept {ident} with an empty geometry: {msg}", err=True)
            else:
                data = read_inskrivning(d, personal_data=personal_data, progress=progress)
                tables.update(data.tables())
                click.echo(
                    "vggeo: owner keys of persons are keyed with a secret drawn for this run "
                    "only: they link this file's tables, match no store and cannot be "
                    "reversed",
                    err=True,
                )
            dels = _deletions(d)
            if dels is not None:
                tables["deletions"] = dels
            unmapped = data.unmapped
            product = d.product
    if unmapped:  # data the tables do not keep: every path, with its count
        from vggeo.lm.package import unmapped_lines

        click.echo(
            f"vggeo: {sum(unmapped.values())} XML elements were not mapped "
            f"({len(unmapped)} paths); their data is not in the output:",
            err=True,
        )
        for line in unmapped_lines(unmapped):
            click.echo(f"  {line}", err=True)
    if streamed:
        pass  # written already, part by part
    elif suffix == ".gpkg":
        write_gpkg_layers(tables, output, geometry_type="MultiPolygon")
    else:
        name = table or ("provisions" if product == "bestammelse" else "agande")
        if name not in tables:
            raise InputError(f"no table {name!r}; this delivery has {sorted(tables)}")
        # GeoParquet 1.1 for the provisions, as every vggeo output; categoricals as text.
        write_table(categoricals_as_text(tables[name]), output)
    for name, frame in tables.items():
        rows[name] = len(frame)
    for name, n in rows.items():
        click.echo(f"{name}\t{n}")


@click.command("delivery")
@click.option("--product", type=click.Choice(["bestammelse", "inskrivning"]), required=True)
@click.option(
    "--n",
    "n",
    type=click.IntRange(1),
    default=200,
    show_default=True,
    help="Provisions (bestammelse) or properties (inskrivning) in the base extract.",
)
@click.option(
    "--changes",
    type=click.IntRange(0),
    default=2,
    show_default=True,
    help="Change extracts after the base.",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--crs",
    "crs",
    default="EPSG:3006",
    show_default=True,
    metavar="CRS",
    help="Coordinate system of the geometries: EPSG:3006 or a local zone 3007–3018.",
)
@click.option(
    "--per-file",
    type=click.IntRange(1, 50_000),
    default=50_000,
    show_default=True,
    help="Objects per numbered data file.",
)
@click.option(
    "-o",
    "--output",
    "output",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Output directory.",
)
def sample_delivery_cmd(
    product: str, n: int, changes: int, seed: int, crs: str, per_file: int, output: Path
) -> None:
    """Write one base and K change deliveries (ZIPs that sort in application order) to a folder."""
    from vggeo.crs import get_crs
    from vggeo.sample.delivery import generate_deliveries

    code = get_crs(crs).epsg
    if code != 3006 and not 3007 <= code <= 3018:
        raise click.BadParameter(
            "deliveries use EPSG:3006 or a local zone 3007–3018", param_hint="--crs"
        )
    paths = generate_deliveries(
        output, product=product, n=n, changes=changes, seed=seed, crs=code, per_file=per_file
    )
    for p in paths:
        click.echo(str(p))


def register(group: click.Group) -> None:
    """Add this area's commands to the main group (and to group.commands['sample'])."""
    group.add_command(inspect_cmd)
    group.add_command(read_cmd)
    group.commands["sample"].add_command(sample_delivery_cmd)
