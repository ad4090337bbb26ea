"""``python -m regsim dataset`` and ``refit``: any replicate of a study, from the seed alone.

A replicate is a pure function of (seed, cell, r) (:mod:`regsim.simulate`), so it can be
drawn again without any file under ``results/``: ``dataset`` writes its data as CSV
(columns ``x1 … xk, y``), ``refit`` fits it with the study's methods and priors and prints
every number of its rows of ``results/fits/<cell>.parquet``, to the bit. The study is that
of the workflow's config layers (``config.yaml``, each ``--configfile``, ``--config``), as
for the run. Where ``results/provenance.json`` records a run of that cell drawn or fitted
otherwise (another seed, truth or prior), the command stops with one line rather than
print a replicate that is not the one in ``results/``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from regsim.atomic import output_file
from regsim.cli.studyconfig import add_config_options, load_cli_study
from regsim.errors import InputDataError, RegsimError
from regsim.study import Study
from regsim.tableio import CSV_FORMAT

#: The results folder of the workflow, relative to the folder the command runs in.
RESULTS = "results"


def register(subparsers: Any) -> list[argparse.ArgumentParser]:
    """Add the ``dataset`` and ``refit`` commands to the dispatcher's subparsers."""
    dataset = subparsers.add_parser(
        "dataset",
        help="write one replicate's data (x1 … xk, y) as CSV, drawn again from the seed",
        description=(
            "Draw replicate R of cell LABEL (its name in results/fits/LABEL.parquet) again "
            "from the study's seed and write it as CSV: columns x1 … xk, y, exact to the bit."
        ),
    )
    _common(dataset)
    dataset.add_argument(
        "--out",
        type=output_file,
        metavar="FILE",
        help="CSV file to write (default: standard output)",
    )
    dataset.add_argument("--force", action="store_true", help="replace an existing --out file")
    dataset.set_defaults(func=run_dataset)
    refit = subparsers.add_parser(
        "refit",
        help="fit one replicate again and print every method's numbers",
        description=(
            "Draw replicate R of cell LABEL again and fit it with the study's methods and "
            "priors: the numbers of its rows of results/fits/LABEL.parquet, to the bit."
        ),
    )
    _common(refit)
    refit.add_argument(
        "--method", action="append", metavar="M", help="only this method (repeatable)"
    )
    refit.add_argument("--json", action="store_true", help="print JSON instead of a table")
    refit.set_defaults(func=run_refit)
    return [dataset, refit]


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cell", required=True, metavar="LABEL", help="the cell's label")
    parser.add_argument(
        "--replicate", required=True, type=int, metavar="R", help="the replicate index"
    )
    add_config_options(parser)


def chosen_replicate(study: Study, label: str, replicate: int) -> Any:
    """The cell ``label`` of ``study`` and its replicate ``replicate``, drawn again.

    Raises
    ------
    regsim.errors.InputDataError
        If the label is not a cell of the study, or the replicate is out of range; the
        message lists what exists.
    """
    from regsim.simulate import draw

    cell = study.labels.get(label)
    if cell is None:
        labels = list(study.labels)
        shown = ", ".join(labels[:12]) + (f", … ({len(labels)} cells)" if len(labels) > 12 else "")
        raise InputDataError(f"--cell: no cell {label!r} in this study; cells: {shown}")
    if not 0 <= replicate < study.replications:
        raise InputDataError(
            f"--replicate: {replicate} is out of range; cell {label} has replicates 0 to "
            f"{study.replications - 1}"
        )
    return draw(cell, study.seed, replicate, replicate + 1)


def check_against_run(
    study: Study, label: str, results: str | os.PathLike[str], *, fits: bool
) -> None:
    """Stop if ``results`` holds a recorded run whose cell ``label`` is another one.

    The record's configuration (``provenance.json``, written at the end of a run) gives the
    cell its seed and data-generating parameters, and, with ``fits``, its methods and
    priors; where they differ from ``study``'s, the replicate drawn here is not the one
    whose rows are in ``results/fits/``. No record, an unreadable one or a record without
    that cell: nothing to check (``regsim verify`` checks a record).

    Raises
    ------
    regsim.errors.InputDataError
        Naming what differs and how to get the run's study.
    """
    from regsim.provenance import PROVENANCE_NAME, read_provenance
    from regsim.verify import recorded_config

    record_path = Path(results) / PROVENANCE_NAME
    if not record_path.is_file():
        return
    try:
        recorded = Study.from_config(recorded_config(read_provenance(results)))
        run_cell = recorded.labels.get(label)
    except (RegsimError, KeyError, TypeError, ValueError):
        return
    cell = study.labels.get(label)
    if run_cell is None or cell is None:
        return
    if recorded.seed != study.seed:
        differs = f"used seed {recorded.seed}; these config layers give seed {study.seed}"
    elif run_cell.key != cell.key:
        differs = (
            f"drew cell {label} with other data-generating parameters (truth, design or "
            "error model) than these config layers"
        )
    elif fits and not recorded.fit.same_fits(study.fit):
        differs = (
            f"fitted cell {label} with other methods, priors or settings than these config layers"
        )
    else:
        return
    raise InputDataError(
        f"{record_path}: the run recorded there {differs}; pass the --configfile and --config "
        "that run was given"
    )


def run_dataset(args: argparse.Namespace) -> int:
    """Write the replicate's data as CSV; return 0."""
    import pandas as pd

    from regsim.atomic import require_folder, write_text_atomic

    study = load_cli_study(args)
    check_against_run(study, args.cell, RESULTS, fits=False)
    data = chosen_replicate(study, args.cell, args.replicate)
    x, y = data.x[0], data.y[0]
    table = pd.DataFrame({f"x{j + 1}": x[:, j] for j in range(x.shape[1])})
    table["y"] = y
    text = table.to_csv(index=False, **CSV_FORMAT)
    if args.out is None:
        sys.stdout.write(text)
        return 0
    if args.out.exists() and not args.force:
        raise InputDataError(f"--out: {args.out} exists; refusing to replace it (use --force)")
    require_folder(args.out)
    write_text_atomic(args.out, text)
    return 0


def refit_rows(study: Study, label: str, replicate: int, methods: list[str] | None = None) -> Any:
    """The replicate's rows of the table of fits, fitted again (failures marked)."""
    from dataclasses import replace

    from regsim.fits import fit_table

    spec = study.fit
    if methods:
        unknown = [m for m in methods if m not in spec.methods]
        if unknown:
            raise InputDataError(
                f"--method: {unknown[0]!r} is not a method of this study "
                f"({', '.join(spec.methods)})"
            )
        spec = replace(spec, methods=tuple(m for m in spec.methods if m in methods))
    return fit_table(chosen_replicate(study, label, replicate), spec)


def run_refit(args: argparse.Namespace) -> int:
    """Print the replicate's fits; return 0."""
    study = load_cli_study(args)
    check_against_run(study, args.cell, RESULTS, fits=True)
    rows = refit_rows(study, args.cell, args.replicate, args.method)
    if args.json:
        out: dict[str, Any] = {}
        for r in rows.to_dict("records"):
            series = r["method"] if not r["prior"] else f"{r['method']}:{r['prior']}"
            out.setdefault(series, {})[r["parameter"]] = {
                key: _number(r[key]) for key in ("estimate", "se", "lower", "upper")
            } | {"converged": bool(r["converged"]), "multimodal": bool(r["multimodal"])}
        sys.stdout.write(json.dumps(out, indent=1, allow_nan=False) + "\n")
        return 0
    columns = ["prior", "method", "parameter", "estimate", "se", "lower", "upper", "converged"]
    text = rows[columns].to_string(index=False, float_format=lambda v: repr(float(v)))
    sys.stdout.write(text + "\n")
    return 0


def _number(value: float) -> float | None:
    """A float for JSON: exact (repr round trip), null when not finite."""
    value = float(np.float64(value))
    return value if math.isfinite(value) else None
