"""What the Snakefile and the job scripts share with the package: config, logs, exit.

* :func:`load_study`: the study of the workflow's config layers (``config.yaml``, each
  ``--configfile``, ``--config``), validated and checked, or one line and exit status 1.
* :func:`log_to`: a job's logging, warnings and output into its log file; a
  :class:`~regsim.errors.RegsimError` becomes one line and exit status 1.
* :func:`cancel_scheduler_timers`: Snakemake waits a second after its last job for a
  re-check of its queue; once the run has ended there is nothing left to check.
* :func:`simulate_job`, :func:`collect_job`: a simulate or the collect job's spec,
  rebuilt in the job from the study's configuration and checked against the digest its
  rule records.
* :func:`check_report_results`: a report of the files another configuration made is
  refused in one line; :func:`warn_stale_results`: after a run, one line if ``results/``
  holds an earlier configuration's files; :func:`warn_outdated_report`: one line if
  ``results/report.html`` shows pages the run has changed.

Nothing here imports Snakemake: the Snakefile passes what it needs.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import threading
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any, TypeVar

from regsim import config as configuration
from regsim.errors import ConfigError, RegsimError
from regsim.specs import CollectJob, SimulateJob
from regsim.study import Study


def load_study(
    configfiles: Sequence[str | os.PathLike[str]],
    overrides: Mapping[str, Any] | None,
    *,
    replace_defaults: bool = False,
    validate: Callable[[dict[str, Any]], object] | None = None,
    defaults: str = "config.yaml",
) -> Study:
    """The study of the workflow's config layers, or exit with one line naming the key.

    The config is built here rather than with Snakemake's ``configfile:``, whose recursive
    merge would add the default grid and priors to a user's own: ``defaults`` (skipped
    with ``replace_defaults``, or when absent and a config file is given) <- each of
    ``configfiles`` <- ``overrides`` (``--config``, the profile's included), each layer
    replacing the top-level keys it names wholesale. Files are read as plain data
    (``regsim.config.read_config_file``).

    Parameters
    ----------
    configfiles : sequence of path-like
        The ``--configfile`` arguments, in order.
    overrides : mapping or None
        The ``--config`` values.
    replace_defaults : bool
        Snakemake's ``--replace-workflow-config``.
    validate : callable, optional
        The schema check (Snakemake's ``validate`` bound to the schema), which fills
        defaults.
    defaults : str
        The workflow's own config file.

    Raises
    ------
    SystemExit
        With ``config error: <key>: <problem>`` on any problem, before any job.
    """
    files = [str(path) for path in configfiles]
    without_defaults = not replace_defaults and not Path(defaults).exists() and bool(files)
    if not replace_defaults and not without_defaults:
        files.insert(0, defaults)
    try:
        resolved = configuration.resolve(
            configuration.load_layers(files, overrides=overrides),
            validate=validate,
            capacity=shutil.disk_usage(".").total,
        )
        study = Study.from_config(resolved)
        _check_fixed_designs(study)
        return study
    except ConfigError as error:
        hint = ""
        if without_defaults and "required key is missing" in str(error):
            # e.g. snakemake --directory elsewhere: the defaults are the working folder's
            hint = (
                f" (there is no {defaults} in {Path.cwd()}, so the config files given are "
                f"the whole config: give the workflow's {defaults} as the first --configfile)"
            )
        sys.exit(f"config error: {error}{hint}")


def simulate_job(config: Mapping[str, Any], name: str, digest: str) -> SimulateJob:
    """The spec of simulate job ``name``, from the study of ``config`` (Snakemake's
    ``config`` in the job), whose :meth:`~regsim.specs.SimulateJob.digest` must be
    ``digest``, the one its rule recorded (as for :func:`collect_job`).

    Raises
    ------
    RuntimeError
        If the configuration gives another spec than the rule's.
    """
    return _as_recorded(
        Study.from_config(config).simulate_job(name), digest, f"simulate job {name}'s"
    )


def collect_job(config: Mapping[str, Any], digest: str) -> CollectJob:
    """The collect job's spec: the study of ``config`` (the workflow's resolved
    configuration, Snakemake's ``config`` in the job) gives it, and its
    :meth:`~regsim.specs.CollectJob.digest` must be ``digest``, the one the rule recorded.

    The digest is a guard that the spec the job builds is the one its rule was given (one
    parse of the workflow makes both, on a cluster the job's own); it is what Snakemake
    compares for reruns.

    Raises
    ------
    RuntimeError
        If the configuration gives another spec than the rule's.
    """
    return _as_recorded(Study.from_config(config).collect_job, digest, "the collect job's")


_Spec = TypeVar("_Spec", SimulateJob, CollectJob)


def _as_recorded(job: _Spec, digest: str, whose: str) -> _Spec:
    """``job`` if its digest is ``digest``, the one its rule recorded, else a
    RuntimeError naming ``whose`` configuration gives which spec."""
    if job.digest() != digest:
        raise RuntimeError(f"{whose} configuration gives spec {job.digest()}, its rule {digest}")
    return job


def _check_fixed_designs(study: Study) -> None:
    """A fixed design's X, drawn now, must serve every replicate (numpy only if needed)."""
    fixed = [design for design in study.designs.values() if design.fixed]
    if not fixed:
        return
    from regsim.simulate import fixed_design_problem

    for design in fixed:
        for n in sorted({cell.n for cell in study.cells}):
            problem = fixed_design_problem(design, n, study.p - 1, study.seed)
            if problem:
                raise ConfigError(f"designs.{design.name}: {problem}")


#: The folder of the study's results, relative to the working folder (the rules' paths).
RESULTS = "results"


def _record(results: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The run record in ``results``, or None where there is none or it cannot be read
    (``regsim.provenance.read_provenance``)."""
    from regsim.errors import DataFileError
    from regsim.provenance import read_provenance

    try:
        return read_provenance(results)
    except DataFileError:
        return None


def asks_for_report(argv: Sequence[str]) -> bool:
    """Whether a Snakemake command line makes a report of the results as they are.

    ``--report`` (with or without its file) does, and so does ``--reporter`` (a report
    plugin, e.g. ``--reporter html --report-html-path FILE``, which ``--report`` stands
    for); ``--report-after-run`` runs the study first, which brings the results up to the
    config.
    """
    arguments = list(argv[1:])
    if "--report-after-run" in arguments:
        return False
    return any(
        arg in ("--report", "--reporter") or arg.startswith(("--report=", "--reporter="))
        for arg in arguments
    )


#: The study's own files at the top of ``results/``, and its folders: a report path there
#: would replace one of the study's files.
_STUDY_FILES = ("explorer.html", "provenance.json", "protocol.md", "README.md")
_STUDY_FOLDERS = (
    "benchmarks",
    "chunks",
    "datasets",
    "figures",
    "fits",
    "logs",
    "metrics",
    "report",
    "tables",
)


def report_path(argv: Sequence[str]) -> Path | None:
    """The file a report command line writes, or None where it names none (Snakemake's
    default, ``report.html`` in the working folder, is never one of the study's files).

    ``--report FILE`` (or ``--report=FILE``) wins over the plugin's ``--report-html-path
    FILE``, as in Snakemake; ``--report`` alone writes the default.
    """
    arguments = list(argv[1:])
    for option in ("--report", "--report-html-path"):
        for i, arg in enumerate(arguments):
            if arg.startswith(option + "="):
                return Path(arg.split("=", 1)[1])
            if arg == option:
                given = i + 1 < len(arguments) and not arguments[i + 1].startswith("-")
                return Path(arguments[i + 1]) if given else None
    return None


def _study_file(path: Path, results: Path) -> bool:
    """Whether ``path`` is (or would be) one of the study's files in ``results``."""
    try:
        parts = path.resolve().relative_to(results.resolve()).parts
    except ValueError:
        return False
    if len(parts) > 1:
        return parts[0] in _STUDY_FOLDERS
    return len(parts) == 1 and parts[0] in _STUDY_FILES


def check_report_results(
    study: Study, argv: Sequence[str], results: str | os.PathLike[str] = RESULTS
) -> None:
    """Refuse, in one line, a report of results another configuration made.

    ``snakemake --report`` describes the study its config layers define, and takes that
    study's figures and tables from ``results/`` whatever made them: after a run of
    another config, files of the same names (``coverage.png``, ``metrics`` tables) would
    be shown under this study's description, with no error. The run record
    (``results/provenance.json``) says which configuration made the results; where it
    names another (:func:`regsim.provenance.config_differences`), the report is refused
    before anything is written. Without a record there is nothing to compare.

    A report written over one of the study's files (``--report results/explorer.html``)
    would replace it, and the next run would see nothing to do: a report path among them
    (its folders, ``explorer.html``, ``provenance.json``, ``protocol.md``, ``README.md``)
    is refused too, with ``--report-after-run`` as well, and so is one in a folder that
    does not exist; another name at the top of ``results/`` (``results/report.html``) is
    the user's.

    Parameters
    ----------
    study : Study
        The study of the workflow's config layers.
    argv : sequence of str
        The command line (``sys.argv``): a report's path is checked whenever one is given,
        the configuration only for a report of the results as they are
        (:func:`asks_for_report`).
    results : path-like
        The results folder.

    Raises
    ------
    SystemExit
        With ``report error: ...`` naming the differing keys or the file.
    """
    # Where the report goes, whenever one is written (--report-after-run too).
    target = report_path(argv)
    if target is not None and not target.parent.is_dir():
        sys.exit(f"report error: {target}: no folder {target.parent} to write the report in")
    if target is not None and _study_file(target, Path(results)):
        sys.exit(
            f"report error: {target} is a file of the study's results, which the report "
            "would replace; give --report another path (e.g. results/report.html)"
        )
    if not asks_for_report(argv):
        return
    record = _record(results)
    if record is None:
        return
    from regsim.provenance import PROVENANCE_NAME, config_differences

    differing = config_differences(study.config, record, ordered=True)
    if differing:
        sys.exit(
            f"report error: {Path(results) / PROVENANCE_NAME} records another configuration "
            f"than this one ({', '.join(differing)} differ): give --report the --configfile "
            "and --config arguments of the run that made the results, or run this study first"
        )


def warn_stale_results(study: Study, results: str | os.PathLike[str] = RESULTS) -> int:
    """After a run, say in one line whether ``results`` holds files this study did not write.

    A config that drops a method, an error model or a figure leaves the files an earlier
    config wrote for it (``efficiency.png``, ``coverage_t3.png``, the report's pages of
    them) beside the new ones, as current-looking as they are: nothing is deleted
    (``regsim verify`` lists them as ``STALE``, from the same record, so the two agree).
    Checked only when the run record is this study's, in the order of its truths, designs
    and priors too, so after a run of the whole study, not of one target. Unless the run
    works in the folder the command was typed in (the shell's ``PWD``; not so with
    ``--directory``), the line names ``results`` by its absolute path, which a command
    typed there finds.

    Returns
    -------
    int
        How many such files there are (and a line was printed to stderr if any).
    """
    record = _record(results)
    if record is None:
        return 0
    from regsim.provenance import config_differences

    if config_differences(study.config, record, ordered=True):
        return 0
    from regsim.verify import stale_files

    # This study's pages are the record's (same config, same order); a record of format 1
    # sorted its config, and verify leaves its report pages alone (None): so does this line.
    pages = study.report_pages if record.get("format_version", 1) >= 2 else None
    stale = stale_files(results, record, report_pages=pages)
    if stale:
        where = _as_typed(results)
        print(
            f"regsim: {where}/ holds {len(stale)} file(s) this study did not write, an "
            f"earlier configuration's (e.g. {where / stale[0].path}): "
            f"`python -m regsim verify {where}/` lists them",
            file=sys.stderr,
        )
    return len(stale)


def warn_outdated_report(
    results: str | os.PathLike[str] = RESULTS, argv: Sequence[str] = ()
) -> bool:
    """After a run, say in one line if ``<results>/report.html`` is out of date: it shows
    other versions of the report's pages than the run left
    (:func:`regsim.verify.outdated_report`). The path is named as
    :func:`warn_stale_results` names it. A command line ``argv`` that builds a report
    after the run (``--report-after-run``) is taken to build this one, and nothing is
    said; nor is anything said of a report elsewhere.

    Returns
    -------
    bool
        Whether the report is out of date (and a line was printed to stderr).
    """
    from regsim.verify import REPORT_FILE, outdated_report

    if "--report-after-run" in argv or asks_for_report(argv):
        return False
    finding = outdated_report(results)
    if finding is None:
        return False
    print(f"regsim: {_as_typed(results) / REPORT_FILE}: {finding.detail}", file=sys.stderr)
    return True


def _as_typed(results: str | os.PathLike[str]) -> Path:
    """``results`` as a command typed in the shell's folder finds it: as given where the
    run works in that folder (the shell's ``PWD``), else absolute (``--directory``)."""
    where = Path(results)
    typed_in = os.environ.get("PWD")
    if not typed_in or Path(typed_in).resolve() != Path.cwd().resolve():
        where = where.resolve()
    return where


#: Qualified name of the function Snakemake's scheduler runs on a timer to look at its
#: queue again (Snakemake's own spelling).
_REEVALUATION = "JobScheduler._schedule_reevalutation.<locals>.<lambda>"


def cancel_scheduler_timers() -> int:
    """Cancel Snakemake's pending queue re-checks once a run has ended; return how many.

    Snakemake (9.x) looks at its job queue again one second after each scheduling round,
    on a ``threading.Timer`` the interpreter waits for before it exits: every run ended a
    second after its last job. Called from the Snakefile's ``onsuccess`` and ``onerror``,
    when nothing is left to schedule. Other timers are left alone, and nothing happens if
    a Snakemake version schedules its re-checks differently.
    """
    pending = [
        thread
        for thread in threading.enumerate()
        if isinstance(thread, threading.Timer)
        and getattr(thread.function, "__qualname__", "") == _REEVALUATION
    ]
    for timer in pending:
        timer.cancel()
    return len(pending)


#: Exit status of a job stopped by Ctrl-C (128 + SIGINT, as a shell reports it).
INTERRUPTED = 130


@contextmanager
def log_to(path: str | os.PathLike[str]) -> Iterator[logging.Logger]:
    """Send logging, warnings, stdout and stderr to ``path`` for the duration.

    An exception leaving the block is logged with its traceback, then re-raised. A
    :class:`~regsim.errors.RegsimError` (bad input, a damaged file) is a message for the
    user, not a bug: it is logged as one ``ERROR`` line and the job exits with status 1
    printing ``error: <message>`` as one line, which Snakemake shows on the console. An
    interrupt (Ctrl-C) is logged as one line and the job exits with status 130, printing
    no traceback.

    Parameters
    ----------
    path : path-like
        The rule's log file (created or overwritten).

    Yields
    ------
    logging.Logger
        The ``regsim`` logger.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    with path.open("w", encoding="utf-8") as stream:
        handler = logging.StreamHandler(stream)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        old_level = root.level
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        logging.captureWarnings(True)
        log = logging.getLogger("regsim")
        failure: SystemExit | None = None
        try:
            with redirect_stdout(stream), redirect_stderr(stream), warnings.catch_warnings():
                warnings.simplefilter("default")
                try:
                    yield log
                except RegsimError as error:
                    log.error("job failed: %s", error)
                    failure = SystemExit(f"error: {error}")
                except KeyboardInterrupt:
                    # Ctrl-C reaches every job of the run: one line each, not a traceback
                    # of wherever the job was (nothing is written half: regsim.atomic).
                    log.error("job interrupted")
                    failure = SystemExit(INTERRUPTED)
                except BaseException:
                    log.exception("job failed")
                    raise
        finally:
            logging.captureWarnings(False)
            root.removeHandler(handler)
            root.setLevel(old_level)
            handler.flush()
    if failure is not None:
        raise failure from None
