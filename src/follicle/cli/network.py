"""CLI: ``follicle network package | run | pool`` - a study run at many sites, aggregates pooled."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from follicle.cli._common import JsonFlag, console, err_console, guarded, print_json

net = typer.Typer(help="Network studies: package a study, run it at a site, pool the sites' bundles.",
                  no_args_is_help=True)


@net.command("package")
@guarded
def package(spec: Annotated[Path, typer.Argument(help="Study spec (YAML or JSON).")],
            out: Annotated[Path, typer.Option("--out", help="Package zip to write.")],
            json: JsonFlag = False) -> None:
    """Package a study spec with its hash, the Follicle version and the CDM version it needs."""
    from follicle.network.package import build_package

    pkg = build_package(spec, out)
    info = {"package": str(out), "study": pkg.spec.name, "package_id": pkg.package_id,
            "follicle_version": pkg.follicle_version, "cdm_version": pkg.cdm_version}
    if json:
        print_json(info)
    else:
        console.print(f"wrote {out}: study {pkg.spec.name}, package {pkg.package_id[:12]}")


@net.command("run")
@guarded
def run(package: Annotated[Path, typer.Argument(help="Study package zip.")],
        db: Annotated[str, typer.Option("--db", help="The site's CDM: a DuckDB file or a postgresql:// URL.")],
        site: Annotated[str, typer.Option("--site", help="Site name (letters, digits, _ . -).")],
        out: Annotated[Path, typer.Option("--out", help="Site bundle zip to write.")],
        work: Annotated[Optional[Path], typer.Option("--work", help="Keep the step cache here (row-level; "
                                                     "default: a temporary folder removed afterwards).")] = None,
        json: JsonFlag = False) -> None:
    """Run the package at one site and write its bundle of aggregates (read summary.html before sending)."""
    from follicle.network.site import run_site

    doc = run_site(package, db, site, out, work=work,
                   progress=None if json else (lambda m: err_console.print(f"[dim]{m}[/]", highlight=False)))
    n = sum(len(o["estimates"]) for c in doc["comparisons"] for o in c["outcomes"])
    if json:
        print_json({"bundle": str(out), "site": doc["site"], "package_id": doc["package_id"], "estimates": n,
                    "not_estimated": doc["not_estimated"]})
    else:
        console.print(f"wrote {out}: site {doc['site']}, {n} estimates; read summary.html inside it before sending")


@net.command("pool")
@guarded
def pool(bundles: Annotated[list[Path], typer.Argument(help="Site bundle zips (of one package).")],
         out: Annotated[Path, typer.Option("--out", help="Output folder: results.json and report.html.")],
         include_failing: Annotated[bool, typer.Option(
             "--include-failing", help="Keep sites failing balance, equipoise or EASE in the pools (marked); "
             "by default they are left out and listed.")] = False,
         json: JsonFlag = False) -> None:
    """Pool site bundles: normal approximation (fixed, random with HKSJ) and profile likelihoods."""
    from follicle.network.pool import pool_bundles

    res = pool_bundles(bundles, out, exclude_failing=not include_failing)
    left = sum(len(o["left_out"]) for c in res["comparisons"] for o in c["outcomes"])
    if json:
        print_json({"out": str(out), "sites": [s["site"] for s in res["sites"]],
                    "pooled": sum(len(c["outcomes"]) for c in res["comparisons"]), "left_out": left})
    else:
        console.print(f"pooled {len(res['sites'])} sites into {out}/results.json and report.html "
                      f"({left} site estimate(s) left out, listed there)")


def register(app: typer.Typer) -> None:
    app.add_typer(net, name="network")
