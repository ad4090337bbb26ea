"""What the benchmark's sections share: the study, targets, timing, tables, JSON, machine.

Every section takes a :class:`Setup` (the default study of ``config.yaml`` and the run's
options) and returns plain values that ``bench/run.py`` collects into its JSON report.
"""

from __future__ import annotations

import math
import os
import platform
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # the checkout's regsim, installed or not

import numpy as np  # noqa: E402

from regsim.config import load_layers, resolve  # noqa: E402
from regsim.design import Prior  # noqa: E402
from regsim.specs import FitSpec  # noqa: E402
from regsim.study import Study  # noqa: E402

#: The estimators benchmarked (the study's default methods).
METHODS = ("ols", "mle", "map")
#: Sample sizes of the throughput, floor and I/O sections.
KERNEL_NS = (10, 100, 1000)
#: Noise level of the throughput sections (the seed notebook's σ).
KERNEL_SIGMA = 5.0
#: The cell (n, σ) where the skeptical N(0, 1) prior gives two posterior modes.
BIMODAL_CELL = (20, 1.0)
#: The project's targets, printed beside the measures (never asserted).
TARGETS = {
    "floor_ratio_n1000": 0.5,
    "floor_ratio_n100": 0.25,
    "notebook_ratio": 1000.0,
    "bayes_over_map": 4.0,
    "default_study_s": 15.0,
    "noop_s": 3.0,
    "large_over_default": 3.0,
    "study_10k_s": 60.0,
    "baseline_ratio": 1.0,
    "job_uss_mb": 300.0,
    "dry_run_1000_cells_s": 10.0,
    "explorer_redraw_ms": 1000.0,
    "explorer_mb": 10.0,
}


@dataclass(frozen=True)
class Setup:
    """Everything the sections share: the default study and the run's options."""

    study: Study
    repeats: int
    quick: bool

    @property
    def seed(self) -> int:
        return self.study.seed

    @property
    def beta(self) -> tuple[float, ...]:
        return next(iter(self.study.truths.values()))

    @property
    def alpha(self) -> float:
        return self.study.alpha

    @property
    def priors(self) -> list[Prior]:
        return list(self.study.priors)

    @property
    def fit(self) -> FitSpec:
        """The benchmarked fits: :data:`METHODS` with the study's priors and settings."""
        return FitSpec(METHODS, tuple(self.study.priors), self.alpha, self.study.fit.map_max_iter)


def load_study(
    configfiles: Sequence[str | os.PathLike[str]] = (),
    overrides: Mapping[str, Any] | None = None,
) -> Study:
    """The study the workflow would run: ``config.yaml`` <- ``configfiles`` <- ``overrides``,
    validated against the schema (which fills the defaults) and checked, as the Snakefile
    does it."""
    from snakemake.utils import validate

    files = [str(ROOT / "config.yaml"), *map(str, configfiles)]
    config = resolve(
        load_layers(files, overrides=overrides),
        validate=lambda c: validate(c, str(ROOT / "schemas" / "config.schema.yaml")),
    )
    return Study.from_config(config)


# --------------------------------------------------------------------------------------
# Timing and numbers
# --------------------------------------------------------------------------------------


def best_of(function: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """Best wall time of ``repeats`` calls and the last result (warm up separately)."""
    best, result = math.inf, None
    for _ in range(max(repeats, 1)):
        start = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - start)
    return best, result


def rel_error(a: np.ndarray, b: np.ndarray) -> float:
    """Largest |a − b| / max(|b|, 1); inf if either has a non-finite entry."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        return math.inf
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1.0), initial=0.0))


def fmt_rate(value: float) -> str:
    if not math.isfinite(value):
        return "-"
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def fmt_seconds(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    if value < 1e-3:
        return f"{value * 1e6:.0f} µs"
    if value < 1:
        return f"{value * 1e3:.1f} ms"
    return f"{value:.2f} s"


def fmt_mb(value: float | None) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.0f}"


def status(ok: bool | None) -> str:
    return "n/a" if ok is None else ("met" if ok else "NOT met")


def at_most(value: float | None, target: float, unit: str = "") -> tuple[str, str]:
    """The target column ``<= target`` and whether ``value`` meets it (n/a if unmeasured)."""
    ok = None if value is None or not math.isfinite(value) else value <= target
    return f"<= {target:g}{unit}", status(ok)


# --------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], indent: int = 2) -> None:
    """Print an aligned table: first column left-aligned, the others right-aligned."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        parts = [
            row[i].ljust(widths[i]) if i == 0 else row[i].rjust(widths[i]) for i in range(len(row))
        ]
        return " " * indent + "  ".join(parts).rstrip()

    print(line(cells[0]))
    print(" " * indent + "  ".join("-" * w for w in widths))
    for row in cells[1:]:
        print(line(row))


def heading(title: str) -> None:
    print(f"\n{title}\n{'=' * len(title)}", flush=True)


def to_json(value: Any) -> Any:
    """Plain JSON values from numpy scalars/arrays, tuples, paths and non-finite floats."""
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_json(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# --------------------------------------------------------------------------------------
# Machine
# --------------------------------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    """CPU, cores, memory, load, versions, BLAS and the BLAS-related environment."""
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram_gb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                ram_gb = int(line.split()[1]) / 1024**2
    except OSError:
        pass
    versions = {"python": platform.python_version()}
    for name in ("numpy", "scipy", "pandas", "pyarrow", "statsmodels", "snakemake"):
        try:
            versions[name] = __import__(name).__version__
        except Exception:  # noqa: BLE001 - report what is there
            versions[name] = None
    blas: dict[str, Any] = {}
    try:
        config = np.show_config(mode="dicts")
        for key in ("blas", "lapack"):
            entry = config["Build Dependencies"][key]
            blas[key] = {k: entry.get(k) for k in ("name", "version", "openblas configuration")}
    except Exception:  # noqa: BLE001
        pass
    try:
        import threadpoolctl

        blas["threadpools"] = [
            {k: pool.get(k) for k in ("internal_api", "version", "num_threads", "architecture")}
            for pool in threadpoolctl.threadpool_info()
        ]
    except ImportError:
        blas["threadpools"] = None
    env_names = (
        "OPENBLAS_CORETYPE",
        "OPENBLAS_L2_SIZE",
        "OPENBLAS_NUM_THREADS",
        "OMP_NUM_THREADS",
        "MKL_NUM_THREADS",
    )
    return {
        "cpu": cpu,
        "logical_cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "ram_gb": ram_gb,
        "platform": platform.platform(),
        "versions": versions,
        "blas": blas,
        "environment": {k: os.environ[k] for k in env_names if k in os.environ},
        "load_average_at_start": list(os.getloadavg()),
    }


def print_machine(info: dict[str, Any]) -> None:
    heading("Machine")
    blas = info["blas"].get("blas") or {}
    rows = [
        ("CPU", info["cpu"]),
        ("cores", f"{info['usable_cpus']} usable of {info['logical_cpus']}"),
        ("RAM", f"{info['ram_gb']:.1f} GB" if info["ram_gb"] else "unknown"),
        ("versions", ", ".join(f"{k} {v}" for k, v in info["versions"].items())),
        ("BLAS", f"{blas.get('name')} {blas.get('version')}"),
        ("environment", ", ".join(f"{k}={v}" for k, v in info["environment"].items()) or "-"),
        ("load average", " ".join(f"{x:.2f}" for x in info["load_average_at_start"])),
    ]
    for key, value in rows:
        print(f"  {key:<13} {value}")
