"""Does a results folder hold what its study computes? Hashes, consistency, stale files.

``python -m regsim verify`` makes three kinds of check on a results folder:

1. **Hashes** (``regsim.provenance.check_tables``): every file the provenance record lists
   against its recorded SHA-256 — ``ok``, ``MISMATCH`` or ``missing``.
2. **Consistency**: what can be computed again from the files it was computed from is, and
   compared byte for byte, up the chain the workflow follows — each cell's table of fits
   and metrics from the jobs' chunks of fits, ``metrics.csv`` from the cells' metrics, the
   paper tables, failure report and theory comparison from ``metrics.csv``. A table edited
   by hand, even one the workflow was rerun on (so that the record was written again
   around it), disagrees with what it was made from: ``DISAGREES``, naming both.
3. **Stale files**: a file under the results folder that the record does not list (the
   outputs of an earlier configuration: cells removed, fewer coefficients) is ``STALE``,
   so a reader can tell which files belong to the current study; so is a page of the
   report (``report/<page>.html``) that shows no figure or table of the study, and the
   report itself (``report.html``) if the pages it shows are not the report's pages as
   they are now (:func:`outdated_report`).

Figures are checked by hash only. Logs, benchmark files, the report and the explorer are not
results (:data:`NOT_RESULTS`).
"""

from __future__ import annotations

import base64
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from regsim.errors import RegsimError
from regsim.provenance import PROVENANCE_NAME, read_provenance

#: Folders and files under results/ that are records of a run or views of the results,
#: not results: logs and benchmarks; the report (``report.html``, and its pages under
#: ``report/``) and the results explorer (``explorer.html``), which are drawn from the
#: recorded files, show their hashes and record nothing themselves, so they are written
#: after the record and are not in it.
NOT_RESULTS: tuple[str, ...] = (
    "logs/",
    "benchmarks/",
    "README.md",
    "report",
    "explorer.html",
    PROVENANCE_NAME,
)


@dataclass(frozen=True)
class Finding:
    """One problem found by :func:`consistency` or :func:`stale_files`.

    Attributes
    ----------
    status : {"DISAGREES", "STALE"}
    path : str
        The file, relative to the results folder.
    detail : str
        What it disagrees with, or why it is stale.
    """

    status: str
    path: str
    detail: str


def recorded_config(record: Mapping[str, Any]) -> dict[str, Any]:
    """The study's configuration from a provenance record, numbers restored.

    The record writes non-finite numbers as text (``"inf"`` for a flat prior's sd); they
    are numbers again here.
    """

    def restore(value: Any) -> Any:
        if isinstance(value, Mapping):
            return {key: restore(item) for key, item in value.items()}
        if isinstance(value, list):
            return [restore(item) for item in value]
        if value in ("inf", "-inf", "nan"):
            return float(value)
        return value

    config = dict(record.get("config") or {})
    for key in ("beta", "truths", "designs", "grid", "priors"):
        if key in config:
            config[key] = restore(config[key])
    return config


#: The folder of the report's pages, ``report/<page>.html`` (``Study.report_pages``).
REPORT_PAGES = "report/"


def stale_files(
    results: str | os.PathLike[str],
    record: Mapping[str, Any],
    *,
    report_pages: Iterable[str] | None = None,
) -> list[Finding]:
    """Files under ``results`` the record does not list (and that are not run records),
    and report pages (``report/<page>.html``) not among ``report_pages`` (default: the
    pages of the recorded study; none is called stale if its config cannot be read)."""
    root = Path(results)
    listed = set(record.get("tables") or {})
    pages = _report_pages(record) if report_pages is None else set(report_pages)
    found = []
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.name.startswith("."):
            continue
        relative = PurePosixPath(*path.relative_to(root).parts).as_posix()
        if relative in listed:
            continue
        if pages is not None and relative.startswith(REPORT_PAGES):
            if relative.removeprefix(REPORT_PAGES).removesuffix(".html") not in pages:
                detail = "a report page of no figure or table of this study (an earlier one's?)"
                found.append(Finding("STALE", relative, detail))
            continue
        if relative.startswith(NOT_RESULTS):
            continue
        detail = "not a file of this study (an earlier configuration's?)"
        found.append(Finding("STALE", relative, detail))
    return found


#: The report as the docs build it, ``snakemake --report results/report.html``.
REPORT_FILE = "report.html"

#: How to build the report again, from the folder the study ran in.
REPORT_AGAIN = (
    "build it again with snakemake --report results/report.html and the run's --configfile, "
    "--config and --directory options"
)


def outdated_report(results: str | os.PathLike[str]) -> Finding | None:
    """A ``STALE`` finding for ``<results>/report.html`` if it shows other pages than the
    report's pages under ``<results>/report/`` are now, else None.

    Snakemake's self-contained report embeds each page it shows, base64 of the file's
    bytes under the page's path: a page the report names whose bytes it does not hold was
    written again since (a later run changed what it shows), and a page it does not name
    is one it lacks. Compared by content, not by time: a run that rewrote only the record
    (a new commit) leaves the report current, and a copy or clone of the folder (which
    does not keep files' times) is judged alike. A report that names none of the pages (of
    another layout, or of no page) is left alone, as is a folder without one.
    """
    root = Path(results)
    try:
        text = (root / REPORT_FILE).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    folder = root / REPORT_PAGES
    pages = sorted(path for path in folder.rglob("*.html") if path.is_file())
    named = [page for page in pages if f'{REPORT_PAGES}{_relative(page, folder)}"' in text]
    if not named:
        return None
    changed = [
        page
        for page in pages
        if page not in named or base64.b64encode(page.read_bytes()).decode("ascii") not in text
    ]
    if not changed:
        return None
    first = f"{REPORT_PAGES}{_relative(changed[0], folder)}"
    return Finding(
        "STALE",
        REPORT_FILE,
        f"out of date: {len(changed)} of the {len(pages)} pages under {REPORT_PAGES} are not "
        f"as it shows them (e.g. {first}), a later run wrote them; {REPORT_AGAIN}",
    )


def _relative(path: Path, folder: Path) -> str:
    return PurePosixPath(*path.relative_to(folder).parts).as_posix()


def _report_pages(record: Mapping[str, Any]) -> set[str] | None:
    """The report pages of the recorded study (``Study.report_pages``); None if its
    configuration cannot be read as a study, or a record of format 1 sorted its keys (the
    order of truths and designs names the zip plot's default cell, and so a page)."""
    if record.get("format_version", 1) < 2:
        return None
    study = _recorded_study(record)
    return None if study is None else set(study.report_pages)


def _recorded_study(record: Mapping[str, Any]) -> Any:
    """The study of a record's configuration; None if it cannot be read as one (a record
    of another version's layout)."""
    from regsim.study import Study

    try:
        study = Study.from_config(recorded_config(record))
        study.cells  # noqa: B018 - a record of another layout fails here
    except (RegsimError, KeyError, TypeError, ValueError):
        return None
    return study


def consistency(results: str | os.PathLike[str], record: Mapping[str, Any]) -> list[Finding]:
    """Recompute every table the study computes from its inputs; list those that differ.

    A check runs when its inputs are in the folder; a table is reported once, at the first
    step of the chain where it disagrees. Each step is made from what the step before it
    computes again, not from the folder's file, so a table edited by hand is reported
    alone, not with every table made from it: an edited ``metrics.csv`` disagrees with the
    cells' metrics, and the paper tables made from the original are not blamed.
    """
    root = Path(results)
    study = _recorded_study(record)
    if study is None:
        return []
    findings: list[Finding] = list(_protocol(root, study))
    with tempfile.TemporaryDirectory(prefix="regsim-verify-") as scratch:
        findings += _cells(root, study, Path(scratch))
        findings += _metrics_table(root, study, Path(scratch))
        findings += _paper(root, study, Path(scratch))
    return findings


def _protocol(root: Path, study: Any) -> Iterator[Finding]:
    """``protocol.md`` against the protocol of the recorded configuration."""
    from regsim.protocol import protocol_markdown

    path = root / "protocol.md"
    if path.is_file() and path.read_text(encoding="utf-8") != protocol_markdown(study):
        yield Finding("DISAGREES", "protocol.md", "not the protocol of the recorded configuration")


def _same(a: Path, b: Path) -> bool:
    return a.read_bytes() == b.read_bytes()


def _cells(root: Path, study: Any, scratch: Path) -> Iterator[Finding]:
    """Each cell's tables against what its chunks of fits give."""
    from regsim.cells import cell_sources, write_cell

    chunks = [root / "chunks" / f"{job}.parquet" for job in study.plan]
    if not all(path.is_file() for path in chunks):
        return
    try:
        sources = cell_sources(chunks)
    except RegsimError as error:
        yield Finding("DISAGREES", "chunks/", f"unreadable ({error})")
        return
    for label in study.labels:
        fits, metrics = root / "fits" / f"{label}.parquet", root / "metrics" / f"{label}.parquet"
        if not (fits.is_file() and metrics.is_file()) or label not in sources:
            continue
        again_fits, again_metrics = scratch / f"{label}.fits", scratch / f"{label}.metrics"
        job = study.collect_job
        write_cell(
            sources[label],
            study.alpha,
            again_fits,
            again_metrics,
            reference=job.reference,
            failures=job.failures,
        )
        if not _same(fits, again_fits):
            yield Finding("DISAGREES", f"fits/{label}.parquet", "not what its chunks give")
        elif not _same(metrics, again_metrics):
            yield Finding(
                "DISAGREES", f"metrics/{label}.parquet", f"not what fits/{label}.parquet gives"
            )


def _made_again(root: Path, scratch: Path, name: str, again: str) -> Path:
    """The file ``again`` in ``scratch`` where a check made it again, else the folder's."""
    made = scratch / again
    return made if made.is_file() else root / name


def _metrics_table(root: Path, study: Any, scratch: Path) -> Iterator[Finding]:
    """``metrics.csv`` against what the cells' metrics give (as made again from the
    chunks, where they were)."""
    from regsim.cells import collect_metrics
    from regsim.tableio import write_metrics_csv

    table = root / "tables" / "metrics.csv"
    cells = [
        _made_again(root, scratch, f"metrics/{label}.parquet", f"{label}.metrics")
        for label in study.labels
    ]
    if not table.is_file() or not all(path.is_file() for path in cells):
        return
    again = scratch / "metrics.csv"
    write_metrics_csv(collect_metrics(cells), again)
    if not _same(table, again):
        yield Finding("DISAGREES", "tables/metrics.csv", "not what metrics/*.parquet give")


def _paper(root: Path, study: Any, scratch: Path) -> Iterator[Finding]:
    """The paper tables, failure report, failure rules and theory comparison against
    ``metrics.csv`` (and, for the last two, the cells' tables of fits), each as made again
    where it was."""
    from regsim.jobs import write_rule_tables
    from regsim.tableio import read_metrics
    from regsim.tables import write_failure_report, write_paper_tables

    source = _made_again(root, scratch, "tables/metrics.csv", "metrics.csv")
    if not source.is_file():
        return
    try:
        metrics = read_metrics(source)
    except RegsimError as error:
        yield Finding("DISAGREES", "tables/metrics.csv", f"unreadable ({error})")
        return
    job = study.paper_job
    written = write_paper_tables(metrics, scratch / "tables", **job.table_options())
    failures = scratch / "tables" / "failures.md"
    written.append(write_failure_report(metrics, failures, job.failures))
    fits = {
        label: _made_again(root, scratch, f"fits/{label}.parquet", f"{label}.fits")
        for label in study.labels
    }
    outputs = {
        kind: (scratch / "tables" / f"{name}.csv", scratch / "tables" / f"{name}.md")
        for kind, name in (("sensitivity", "failures_sensitivity"), ("theory", "theory"))
    }
    rebuilt = write_rule_tables(
        study.collect_job,
        metrics,
        fits if all(path.is_file() for path in fits.values()) else None,
        **outputs,
    )
    for kind in rebuilt:
        written += outputs[kind]
    for again in written:
        mine = root / "tables" / again.name
        if mine.is_file() and not _same(mine, again):
            yield Finding("DISAGREES", f"tables/{again.name}", "not what tables/metrics.csv gives")


def verify_all(
    results: str | os.PathLike[str], *, recompute: bool = True
) -> tuple[list[Any], list[Finding]]:
    """Every check of the module docstring: the hash checks, then the findings.

    Raises
    ------
    regsim.errors.DataFileError
        If ``provenance.json`` is missing or malformed.
    """
    from regsim.provenance import check_tables

    record = read_provenance(results)
    hashes = check_tables(results)
    findings = stale_files(results, record)
    report = outdated_report(results)
    if report is not None:
        findings.append(report)
    if recompute:
        findings = consistency(results, record) + findings
    return hashes, findings


__all__ = [
    "Finding",
    "consistency",
    "outdated_report",
    "recorded_config",
    "stale_files",
    "verify_all",
]
