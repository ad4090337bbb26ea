"""``python -m regsim fit``: fit OLS, OLS with HC3, MLE, MAP and Bayes to a user's own CSV."""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from regsim.cli.csvfile import data_lines, read_csv_table
from regsim.design import Prior
from regsim.errors import InputDataError
from regsim.estimators import parameter_names
from regsim.estimators.base import sigma_exponent
from regsim.estimators.bayes import existing
from regsim.estimators.single import (
    TRUSTED_CONDITION,
    conditioning,
    covariate_exponents,
    fit_dataset,
    least_squares,
    response_centre,
    response_exponent,
)
from regsim.estimators.stats import LEVERAGE_ONE
from regsim.limits import (
    MAX_MAGNITUDE,
    MAX_PRIOR_SD,
    MIN_PRIOR_SD,
    alpha_problem,
    magnitude_problem,
    prior_resolution_problem,
    prior_sd_problem,
)
from regsim.schema import DEFAULT_SIGMA_PRIOR, SIGMA_PRIORS, method_name

METHODS = ("ols", "ols_hc3", "mle", "map", "bayes")

#: A residual sum of squares at most this fraction of the response's sum of squares about
#: its mean (residuals ~1e-12 of its spread) is an exact fit: sigma is 0 up to rounding.
EXACT_FIT = 1e-24


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``fit`` command."""
    parser = subparsers.add_parser(
        "fit",
        help="fit OLS, OLS with HC3, MLE, MAP and Bayes to a CSV file",
        description=(
            "Fit y = b0 + b1 x1 + ... + e by OLS (with classical and HC3 standard errors), "
            "maximum likelihood, MAP and the exact "
            "posterior (Bayes: posterior means, sds and equal-tailed credible intervals), "
            "with normal priors on the coefficients (intercept first) and a flat or "
            "Jeffreys prior on sigma. beta0 is the intercept, beta1 ... follow the covariate "
            "columns in order."
        ),
    )
    parser.add_argument("data", type=Path, help="CSV file with a header row")
    parser.add_argument("--y", required=True, metavar="COLUMN", help="response column")
    parser.add_argument(
        "--x", nargs="+", metavar="COL", help="covariate columns (default: all but --y)"
    )
    parser.add_argument(
        "--prior-mean",
        nargs="+",
        type=float,
        metavar="MU",
        help="prior means, one per coefficient, intercept first (default: 0); needs --prior-sd",
    )
    parser.add_argument(
        "--prior-sd",
        nargs="+",
        type=float,
        metavar="ETA",
        help="prior sds, one per coefficient; inf for a flat prior (default: inf; then MAP is "
        "the MLE under the flat sigma prior)",
    )
    parser.add_argument(
        "--sigma-prior",
        choices=SIGMA_PRIORS,
        default=DEFAULT_SIGMA_PRIOR,
        help="prior on sigma of MAP and Bayes: flat, p(sigma) ~ 1, or jeffreys, p(sigma) ~ "
        "1/sigma (default: flat)",
    )
    parser.add_argument(
        "--alpha", type=float, default=0.05, help="1 - alpha intervals (default 0.05)"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    # Let values such as -1e3 or -inf follow --prior-mean: argparse takes a word starting
    # with "-" for an option unless it looks like a number, and its own pattern of a
    # number has no exponent.
    parser._negative_number_matcher = NEGATIVE_NUMBER
    parser.set_defaults(func=run)


#: A negative number as a command-line word, exponent and infinity included.
NEGATIVE_NUMBER = re.compile(r"^-(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$|^-inf(?:inity)?$", re.I)


def read_regression_data(
    path: Path, response: str, covariates: list[str] | None
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Read and check a CSV for fitting.

    Returns
    -------
    x : ndarray, shape (n, k)
    y : ndarray, shape (n,)
    covariates : list of str
        The covariate column names, in order.

    Raises
    ------
    InputDataError
        On an unreadable or empty file, a missing or non-numeric column, missing values,
        too few rows, or a constant or collinear covariate.
    """
    try:
        frame = read_csv_table(path)
    except FileNotFoundError as error:
        raise InputDataError(f"{path}: file not found") from error
    except pd.errors.EmptyDataError as error:
        raise InputDataError(f"{path}: the file is empty") from error
    except (pd.errors.ParserError, UnicodeDecodeError, OSError) as error:
        reason = " ".join(str(error).split())
        raise InputDataError(f"{path}: cannot parse as CSV ({reason})") from error
    if response not in frame.columns:
        raise InputDataError(f"{path}: no column {response!r} (columns: {list(frame.columns)})")
    if covariates is None:
        covariates = [c for c in frame.columns if c != response]
    for name in covariates:
        if name not in frame.columns:
            raise InputDataError(f"{path}: no column {name!r} (columns: {list(frame.columns)})")
        if name == response:
            raise InputDataError(f"{path}: column {name!r} is both the response and a covariate")
    if len(set(covariates)) != len(covariates):
        twice = next(name for name in covariates if covariates.count(name) > 1)
        raise InputDataError(f"{path}: covariate column {twice!r} is listed twice (--x)")
    if frame.empty:
        raise InputDataError(f"{path}: no data rows")
    for name in [response, *covariates]:
        column = frame[name]
        if not pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
            raise InputDataError(
                f"{path}: column {name!r} is not numeric{_first_text(path, column)}"
            )
        values = column.to_numpy(dtype=float)
        bad = ~np.isfinite(values)
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            row = file_line(path, first, len(frame))
            if np.isnan(values[first]):
                raise InputDataError(f"{path}: column {name!r} has a missing value (line {row})")
            raise InputDataError(
                f"{path}: column {name!r} has an infinite value {values[first]} (line {row})"
            )
    n, p = len(frame), len(covariates) + 1
    if n <= p:
        raise InputDataError(f"{path}: {n} rows for {p} coefficients; need at least {p + 1} rows")
    x = frame[covariates].to_numpy(dtype=float)
    y = frame[response].to_numpy(dtype=float)
    for j, name in enumerate(covariates):
        if np.ptp(x[:, j]) == 0:
            raise InputDataError(
                f"{path}: column {name!r} is constant (the intercept already fits it)"
            )
    if covariates:
        check = conditioning(x)
        if check.singular:
            raise InputDataError(
                f"{path}: covariates {covariates} are collinear (one is a linear combination of "
                "others)"
            )
        if not check.trusted:
            raise InputDataError(
                f"{path}: covariates {covariates} are nearly collinear (condition number "
                f"{check.condition:.2g}, above {TRUSTED_CONDITION:.0e}): rounding could change "
                "the printed digits; drop or combine covariates"
            )
    if np.ptp(y) == 0:
        raise InputDataError(f"{path}: column {response!r} (the response) is constant")
    return x, y, covariates


def _first_text(path: Path, column: pd.Series) -> str:
    """`` ('low', line 2)``: the first value of ``column`` that is not a number, and its
    line in the file; empty if every value reads as one."""
    numbers = pd.to_numeric(column, errors="coerce")
    text = np.flatnonzero(numbers.isna().to_numpy() & column.notna().to_numpy())
    if not len(text):
        return ""
    first = int(text[0])
    return f" ({column.iloc[first]!r}, line {file_line(path, first, len(column))})"


def file_line(path: Path, row: int, n: int) -> int:
    """The line of ``path`` on which data row ``row`` (from 0) of its ``n`` starts."""
    return file_lines(path, [row], n)[0]


def file_lines(path: Path, rows: list[int], n: int) -> list[int]:
    """The lines of ``path`` on which data rows ``rows`` (from 0) of its ``n`` start
    (:func:`regsim.cli.csvfile.data_lines`); ``row + 2`` (the header is line 1) should
    the file's rows not be the table's."""
    lines = data_lines(path)
    return [lines[row] if len(lines) == n else row + 2 for row in rows]


def _prior(args: argparse.Namespace, p: int, shift: int = 0, columns: Sequence[int] = ()) -> Prior:
    """The prior of the options, checked in the units the fits use, y·2^−shift and
    x_j·2^−k_j (:func:`regsim.estimators.single.response_exponent`,
    :func:`~regsim.estimators.single.covariate_exponents`, ``columns`` the k_j): its bounds
    for β_j scale with y and with x_j, by 2^(shift − k_j)."""
    if args.prior_mean is not None and args.prior_sd is None:
        raise InputDataError(
            "--prior-mean needs --prior-sd: without it every prior is flat (sd inf), and "
            "the means change nothing"
        )
    mean = args.prior_mean if args.prior_mean is not None else [0.0] * p
    sd = args.prior_sd if args.prior_sd is not None else [math.inf] * p
    for option, values in (("--prior-mean", mean), ("--prior-sd", sd)):
        if len(values) != p:
            raise InputDataError(f"{option}: {len(values)} values, expected {p} (intercept first)")
    # The power of two of each coefficient's units in the fits' (the intercept's: y's).
    units = [shift - k for k in (0, *columns)] + [shift] * (p - 1 - len(columns))
    for value, unit in zip(mean, units, strict=True):
        problem = magnitude_problem(value if not unit else math.ldexp(value, -unit))
        if problem and unit and math.isfinite(value):
            bound = _scaled_text(MAX_MAGNITUDE, unit)
            problem = f"{value!r} is too large for this response (at most {bound})"
        if problem:
            raise InputDataError(f"--prior-mean: {problem}")
    for value, unit in zip(sd, units, strict=True):
        if not value > 0:
            raise InputDataError(
                f"--prior-sd: values must be > 0 (inf for a flat prior), got {value}"
            )
        problem = prior_sd_problem(value if not unit else math.ldexp(value, -unit))
        if problem and unit:
            low, high = (_scaled_text(bound, unit) for bound in (MIN_PRIOR_SD, MAX_PRIOR_SD))
            problem = (
                f"{value!r} is outside what the fits resolve for this response (from "
                f"{low} to {high}, or inf for a flat prior)"
            )
        if problem:
            raise InputDataError(f"--prior-sd: {problem}")
    return Prior("user", tuple(mean), tuple(sd))


def _scaled_text(value: float, exponent: int) -> str:
    """value · 2^exponent as ``%.3g`` text, also where it lies beyond the range of doubles
    (a bound or a sum of squares of a response near 1e±300, in that response's units)."""
    try:
        scaled = math.ldexp(value, exponent)
    except OverflowError:
        scaled = math.inf
    if value == 0 or not math.isfinite(value) or sys.float_info.min <= abs(scaled) < math.inf:
        return f"{scaled if math.isfinite(value) else value:.3g}"
    # Beyond: the decimal exponent and the digits from logs (their rounding, about 1e-13
    # relative at exponents near ±2000, is far below three digits').
    log = math.log10(abs(value)) + exponent * math.log10(2.0)
    power = math.floor(log)
    digits = f"{10.0 ** (log - power):.3g}"
    if digits == "10":
        power, digits = power + 1, "1"
    return f"{'-' if value < 0 else ''}{digits}e{power:+03d}"


def _degrees(prior: Prior, n: int, sigma_prior: str) -> int:
    """ν = n − |F| − 1 + a of Bayes's posterior (|F| flat priors, p(σ) ∝ σ^{−a})."""
    flat = sum(1 for sd in prior.sd if math.isinf(sd))
    return n - flat - 1 + sigma_exponent(sigma_prior)


def _check_proper(prior: Prior, n: int, sigma_prior: str) -> None:
    """Bayes needs a proper posterior: ν > 0 (see ``regsim.estimators.bayes``)."""
    nu = _degrees(prior, n, sigma_prior)
    if nu > 0:
        return
    flat = sum(1 for sd in prior.sd if math.isinf(sd))
    fix = "add rows or give proper priors (--prior-sd)"
    if sigma_prior == "flat":
        fix += ", or use --sigma-prior jeffreys"
    raise InputDataError(
        f"bayes: the posterior is improper with flat priors on {flat} "
        f"{'coefficient' if flat == 1 else 'coefficients'}, a "
        f"{sigma_prior} prior on sigma and {n} rows (it needs more than {n - nu} rows); {fix}"
    )


def _norm(values: np.ndarray) -> float:
    """‖values‖, with no overflow or underflow of the squares."""
    top = float(np.max(np.abs(values))) if len(values) else 0.0
    return top * float(np.linalg.norm(values / top)) if top > 0 else 0.0


def _check_prior_resolution(
    prior: Prior, x: np.ndarray, beta_hat: np.ndarray, centre: float = 0.0
) -> None:
    """Every finite prior sd at least what the fits resolve (``regsim.limits``).

    The fits' rounding in coefficient j is of the order of the OLS fit's size in that
    coefficient's units, ‖X β̂‖/‖x_j‖ (x_0 the intercept's column of ones, a covariate's
    column about its mean): a covariate measured in other units scales its coefficient,
    its prior and this size alike, and one shifted by a constant leaves all three as they
    were, so the check depends on neither (a sum of |β̂_j| over coefficients in different
    units did on the first; an uncentred ‖x_j‖ on the second). The fits take y less its
    middle value ``centre`` (:func:`regsim.estimators.single.response_centre`), so a
    slope's size is that of the fit of y − centre, ‖X β̂ − centre‖; the intercept, to
    which the centre is added back, keeps the whole fit's.
    """
    design = np.column_stack([np.ones(len(x)), x - x.mean(axis=0)])
    whole = (_norm(beta_hat[0] + x @ beta_hat[1:]), "||X b||/||x_j|| of the OLS fit b")
    centred = whole
    if centre:
        size = _norm(beta_hat[0] - centre + x @ beta_hat[1:])
        centred = (size, "||X b - middle y||/||x_j|| of the OLS fit b")
    for j, (mean, sd) in enumerate(zip(prior.mean, prior.sd, strict=True)):
        column = _norm(design[:, j])
        fit_size, total = whole if j == 0 else centred
        if not (column > 0 and math.isfinite(column) and math.isfinite(fit_size)):
            continue  # sizes beyond a double's range: nothing to hold the sd against
        names = (f"{sd!r} (coefficient {j})", total, "|prior mean|")
        problem = prior_resolution_problem(sd, mean, fit_size / column, names)
        if problem:
            raise InputDataError(f"--prior-sd: {problem}")


def fit_csv(
    args: argparse.Namespace, notes: list[str] | None = None
) -> dict[str, dict[str, dict[str, float | None]]]:
    """Fit every method to the CSV named in ``args``; return the nested results.

    Bayes's posterior means (sds) of σ and of the coefficients with flat priors exist only
    for ν = n − |F| − 1 + a > 1 (> 2): below, they are None (null in JSON). HC3's
    standard errors, and so its intervals, of the coefficients a row of leverage 1
    determines do not exist (the fit passes through that row: its residual is 0 and so is
    1 − h_i): they are None then, and a line naming the rows and the coefficients is
    appended to ``notes``.
    """
    problem = alpha_problem(args.alpha)
    if problem:
        raise InputDataError(f"--alpha: {problem}")
    x, y, _ = read_regression_data(args.data, args.y, args.x)
    shift = response_exponent(y)
    prior = _prior(args, x.shape[1] + 1, shift, covariate_exponents(x).tolist())
    sigma_prior = getattr(args, "sigma_prior", DEFAULT_SIGMA_PRIOR)
    _check_proper(prior, len(y), sigma_prior)
    with np.errstate(all="ignore"):
        # Before any fit: MAP's and Bayes's searches over sigma need a positive residual
        # sum of squares. Measured in the units the fits use (fit_dataset), where squares
        # of a tiny or huge y neither underflow nor overflow.
        scaled = np.ldexp(y, -shift)
        beta_hat, rss = least_squares(x, scaled)
        spread = float(np.sum((scaled - scaled.mean()) ** 2))
        if not rss > EXACT_FIT * spread:
            share = f", {rss / spread:.1g} of its sum of squares about the mean" if rss else ""
            raise InputDataError(
                f"{args.data}: the covariates fit {args.y!r} exactly, up to rounding (residual "
                f"sum of squares {_scaled_text(rss, 2 * shift)}{share}), so sigma cannot be "
                "estimated"
            )
        # before MAP's search starts
        _check_prior_resolution(prior, x, np.ldexp(beta_hat, shift), response_centre(y))
        fitted = fit_dataset(x, y, prior, args.alpha, METHODS, sigma_prior)
    # Which coefficients are flat, from the sds: a precision 1/sd² can underflow to 0 for
    # a huge sd (or overflow for a tiny one) that is proper in the response's units.
    flat = tuple(0.0 if math.isinf(sd) else 1.0 for sd in prior.sd)
    has_mean, has_sd = existing(flat, _degrees(prior, len(y), sigma_prior))
    results: dict[str, dict[str, dict[str, float | None]]] = {}
    for fit in fitted.fits.values():
        mean_ok = has_mean if fit.method == "bayes" else np.ones(len(has_mean), dtype=bool)
        sd_ok = has_sd if fit.method == "bayes" else np.ones(len(has_sd), dtype=bool)
        limits_ok = np.ones(len(has_sd), dtype=bool)
        if fit.method == "ols_hc3" and not fit.converged[0]:
            rows = list(fitted.exact_rows)
            missing = np.append(~np.isfinite(fit.se[0, :-1]), False)
            if len(rows) and missing.any():
                sd_ok = limits_ok = ~missing
                if notes is not None:
                    notes.append(_leverage_note(args.data, rows, len(y), fit.parameters, missing))
        usable = fit.converged[0] or (
            fit.method in ("bayes", "ols_hc3")
            and np.isfinite(fit.estimate[0, mean_ok]).all()
            and np.isfinite(fit.se[0, sd_ok]).all()
            and np.isfinite(fit.lower[0, limits_ok]).all()
            and np.isfinite(fit.upper[0, limits_ok]).all()
        )
        if not usable:
            raise InputDataError(f"{fit.method}: the fit did not converge on {args.data}")
        results[fit.method] = {
            name: {
                "estimate": float(fit.estimate[0, j]) if mean_ok[j] else None,
                "se": float(fit.se[0, j]) if sd_ok[j] else None,
                "lower": float(fit.lower[0, j]) if limits_ok[j] else None,
                "upper": float(fit.upper[0, j]) if limits_ok[j] else None,
            }
            for j, name in enumerate(fit.parameters)
        }
    return results


def _leverage_note(
    path: Path, rows: list[int], n: int, parameters: tuple[str, ...], missing: np.ndarray
) -> str:
    """The line saying which of the ``n`` rows have leverage 1 and whose HC3 SEs do not
    exist."""
    lines = [str(line) for line in file_lines(path, rows, n)]
    shown = ", ".join(lines[:5]) + (f" and {len(lines) - 5} more" if len(lines) > 5 else "")
    names = " and ".join(name for name, gone in zip(parameters, missing, strict=True) if gone)
    one = len(rows) == 1
    within = f"{LEVERAGE_ONE:.0e}".replace("e-0", "e-")
    return (
        f"ols_hc3: line{'' if one else 's'} {shown} of {path} {'has' if one else 'have'} "
        f"leverage 1 (to within {within}: the fit passes through {'it' if one else 'them'}), "
        f"so the HC3 standard errors and intervals of {names}, the coefficients "
        f"{'it determines' if one else 'they determine'}, do not exist (n/a)"
    )


def _cell(value: float | None) -> str:
    return f"{value:>14.6g}" if value is not None else f"{'n/a':>14}"


def format_table(results: dict[str, dict[str, dict[str, float | None]]], labels: list[str]) -> str:
    """Plain-text table: one block per method, one row per parameter (``n/a`` where a
    posterior mean or sd, or an HC3 standard error, does not exist)."""
    lines = []
    header = f"{'parameter':<24}{'estimate':>14}{'se':>14}{'lower':>14}{'upper':>14}"
    for method, params in results.items():
        lines += [method_name(method), header]
        for name, label in zip(params, labels, strict=True):
            row = params[name]
            lines.append(
                f"{label:<24}{_cell(row['estimate'])}{_cell(row['se'])}"
                f"{_cell(row['lower'])}{_cell(row['upper'])}"
            )
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def run(args: argparse.Namespace) -> int:
    """Entry point of ``regsim fit``."""
    notes: list[str] = []
    results = fit_csv(args, notes)
    for note in notes:
        print(f"regsim fit: {note}", file=sys.stderr)
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    covariates = args.x or [c for c in pd.read_csv(args.data, nrows=0).columns if c != args.y]
    names = parameter_names(len(covariates) + 1)
    labels = [f"{names[0]} (intercept)"]
    labels += [f"{n} ({c})" for n, c in zip(names[1:-1], covariates, strict=True)]
    labels.append("sigma")
    print(f"{args.data}: response {args.y!r}, {1 - args.alpha:.0%} intervals")
    print(format_table(results, labels), end="")
    return 0
