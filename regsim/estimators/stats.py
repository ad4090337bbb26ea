"""Sufficient statistics of a batch of replicate datasets, shared by every estimator.

The statistics are built from centred data (the normal equations of the centred
covariates), and the residual sum of squares of the least-squares fit is summed from the
residuals themselves, so nothing cancels when |β_0| ≫ σ. Their rounding error grows with
the collinearity of the covariates; a replicate beyond :data:`COLLINEARITY_LIMIT`, or whose
response is fitted to rounding (:data:`EXACT_FIT`), is marked unusable and every
estimator's fit of it fails.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from regsim.estimators.linalg import cholesky, entries, lower_inverse


@dataclass(frozen=True)
class SufficientStats:
    """Sufficient statistics of R datasets, shared by every estimator and prior.

    Attributes
    ----------
    n : int
        Observations per dataset.
    beta_hat : ndarray, shape (R, p)
        Least-squares coefficients (intercept first).
    rss : ndarray, shape (R,)
        Residual sum of squares at ``beta_hat``.
    gram : ndarray, shape (R, p, p)
        XᵀX.
    gram_inv : ndarray, shape (R, p, p)
        (XᵀX)⁻¹, from the centred covariates.
    hc3_cov : ndarray, shape (R, p, p), or None
        HC3 sandwich covariance of β̂ (only when asked for: it needs a pass over the data).
    usable : ndarray of bool, shape (R,), or None
        False where the statistics cannot be trusted: the covariates are nearly collinear
        (:data:`COLLINEARITY_LIMIT`) or the response is fitted exactly
        (:data:`EXACT_FIT`); every estimator's fit of such a replicate is failed. None:
        all usable.
    """

    n: int
    beta_hat: np.ndarray
    rss: np.ndarray
    gram: np.ndarray
    gram_inv: np.ndarray
    hc3_cov: np.ndarray | None = None
    usable: np.ndarray | None = None

    @property
    def p(self) -> int:
        """Number of coefficients."""
        return int(self.beta_hat.shape[1])

    @property
    def replicates(self) -> int:
        """Number of datasets R."""
        return int(self.beta_hat.shape[0])


def concat_stats(parts: Sequence[SufficientStats]) -> SufficientStats:
    """The statistics of several batches of datasets (same n), as one batch, in order."""
    if not parts or any(part.n != parts[0].n for part in parts):
        raise ValueError("need statistics of at least one batch, all of the same n")

    def joined(name: str) -> np.ndarray | None:
        arrays = [getattr(part, name) for part in parts]
        if any(array is None for array in arrays):
            return None
        return arrays[0] if len(arrays) == 1 else np.concatenate(arrays)

    return SufficientStats(
        n=parts[0].n,
        beta_hat=joined("beta_hat"),  # type: ignore[arg-type]
        rss=joined("rss"),  # type: ignore[arg-type]
        gram=joined("gram"),  # type: ignore[arg-type]
        gram_inv=joined("gram_inv"),  # type: ignore[arg-type]
        hc3_cov=joined("hc3_cov"),
        usable=joined("usable"),
    )


#: Largest Σ_j VIF_j (the trace of the inverse correlation matrix of the covariates) of a
#: replicate the kernel fits. The slopes come from the normal equations of the centred
#: covariates, whose rounding error grows with this sum: measured against 60-digit
#: references it stays below 1e-7 standard errors up to 1e7 (about 1e-15 per unit of
#: the sum; tests/unit/test_conditioning.py). A replicate beyond it is failed ("nearly
#: collinear"); an equicorrelated normal design with ρ = 0.99999 and two slopes has
#: Σ VIF = 1e5.
COLLINEARITY_LIMIT = 1e7

#: A residual sum of squares at most this fraction of Σ(y − ȳ)² (residuals about 1e-12 of
#: the response's spread) is an exact fit: σ is rounding noise, so the replicate fails.
EXACT_FIT = 1e-24

#: Bytes of centred data per block of replicates in :func:`sufficient_stats`: every pass
#: over a block then runs in cache, not at memory bandwidth (at n = 1000 that is about
#: 2.5 times faster than whole-batch passes).
_STATS_BLOCK_BYTES = 1 << 21


def sufficient_stats(x: np.ndarray, y: np.ndarray, *, sandwich: bool = False) -> SufficientStats:
    """Compute the statistics of R datasets with covariates ``x`` and responses ``y``.

    Parameters
    ----------
    x : ndarray, shape (R, n, k)
        Covariates, without the intercept column.
    y : ndarray, shape (R, n)
        Responses.
    sandwich : bool
        Also compute the HC3 covariance (for ``ols_hc3``).

    Returns
    -------
    SufficientStats
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    replicates, n, k = x.shape
    # The passes over the data go block by block of replicates (a loop over blocks of
    # many replicates, not over replicates), so each block stays in cache.
    block = max(1, _STATS_BLOCK_BYTES // (8 * (k + 1) * n))
    parts = [
        _centred_stats(x[start : start + block], y[start : start + block], sandwich)
        for start in range(0, max(replicates, 1), block)
    ]
    if len(parts) == 1:
        x_mean, y_mean, sxx, sxx_inv, slopes, rss, hc3_cov, usable = parts[0]
    else:
        x_mean, y_mean, sxx, sxx_inv, slopes, rss, hc3_cov, usable = (
            None if part[0] is None else np.concatenate(part) for part in zip(*parts, strict=True)
        )
    intercept = y_mean - np.einsum("ri,ri->r", x_mean, slopes)
    beta_hat = np.concatenate([intercept[:, None], slopes], axis=1)

    gram = np.empty((replicates, k + 1, k + 1))
    gram[:, 0, 0] = n
    gram[:, 0, 1:] = gram[:, 1:, 0] = n * x_mean
    gram[:, 1:, 1:] = sxx + n * x_mean[:, :, None] * x_mean[:, None, :]
    # (XᵀX)⁻¹ by blocks of the centred problem: exact and well conditioned.
    sxx_inv_mean = np.einsum("rij,rj->ri", sxx_inv, x_mean)
    gram_inv = np.empty_like(gram)
    gram_inv[:, 0, 0] = 1.0 / n + np.einsum("ri,ri->r", x_mean, sxx_inv_mean)
    gram_inv[:, 0, 1:] = gram_inv[:, 1:, 0] = -sxx_inv_mean
    gram_inv[:, 1:, 1:] = sxx_inv
    return SufficientStats(
        n=n,
        beta_hat=beta_hat,
        rss=rss,
        gram=gram,
        gram_inv=gram_inv,
        hc3_cov=hc3_cov,
        usable=usable,
    )


def _centred_stats(
    x: np.ndarray, y: np.ndarray, sandwich: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, Any]:
    """Means, centred cross-products, slopes and RSS of one block of replicates.

    Returns x̄ (R, k), ȳ (R,), Sxx (R, k, k), Sxx⁻¹, the slopes (R, k), RSS (R,), the
    HC3 covariance (or None) and whether each replicate is usable (see
    :class:`SufficientStats`).
    """
    replicates, n, k = x.shape
    # Covariates and response as contiguous (R, k + 1, n) rows, centred in place: every
    # reduction below is then a BLAS call or a contiguous pass, not a strided one (and
    # the caller's x is never modified).
    rows = np.empty((replicates, k + 1, n))
    rows[:, :k] = np.swapaxes(x, 1, 2)
    rows[:, k] = y
    means = rows.sum(axis=2) / n
    rows -= means[:, :, None]
    x_rows = rows[:, :k]
    # [Sxx | Sxy] in one batched product.
    cross = np.matmul(x_rows, np.swapaxes(rows, 1, 2))
    sxx = np.ascontiguousarray(cross[:, :, :k])
    sxx_inv = _spd_inverse(sxx)
    # A singular replicate (e.g. a constant binary covariate) has a NaN inverse; its NaNs
    # run through to ``usable``, which flags it, so numpy's warnings would only alarm.
    with np.errstate(invalid="ignore"):
        slopes = np.matmul(sxx_inv, cross[:, :, k:])[:, :, 0]
        # RSS summed from the residuals themselves (nothing cancels when R² ≈ 1), formed
        # in one product: e = (−b, 1) · [x_c; y_c].
        combination = np.empty((replicates, 1, k + 1))
        combination[:, 0, :k] = -slopes
        combination[:, 0, k] = 1.0
        residuals = np.matmul(combination, rows)[:, 0, :]
        rss = np.matmul(residuals[:, None, :], residuals[:, :, None])[:, 0, 0]
    x_mean = means[:, :k]
    hc3_cov = _hc3_covariance(x_rows, residuals, sxx_inv, x_mean) if sandwich else None
    # Σ_j VIF_j = Σ_j Sxx_jj (Sxx⁻¹)_jj, and Σ(y − ȳ)² = RSS + bᵀ Sxy: no pass over the data.
    with np.errstate(invalid="ignore"):
        collinearity = np.einsum("rjj,rjj->r", sxx, sxx_inv)
        total = rss + np.einsum("rj,rj->r", slopes, cross[:, :, k])
        usable = (collinearity <= COLLINEARITY_LIMIT) & (rss > EXACT_FIT * total)
    return x_mean, means[:, k], sxx, sxx_inv, slopes, rss, hc3_cov, usable


def _spd_inverse(matrix: np.ndarray) -> np.ndarray:
    """Inverse of a stack of symmetric positive definite k × k matrices, shape (R, k, k).

    For small k by a Cholesky factorisation written out on the (R,) arrays of entries
    (:func:`cholesky`), several times cheaper than ``np.linalg.inv``'s per-matrix cost;
    a singular matrix gives non-finite entries (never an exception).
    """
    k = matrix.shape[-1]
    if k > _COMPONENT_MAX:
        return np.linalg.inv(matrix)
    inverse = np.empty_like(matrix)
    with np.errstate(divide="ignore", invalid="ignore"):
        lower, inv_diag, _ = cholesky(entries(matrix))
        columns = lower_inverse(lower, inv_diag)
        # (A⁻¹)_ij = Σ_{m ≥ max(i, j)} (L⁻¹)_mi (L⁻¹)_mj.
        for i in range(k):
            for j in range(i + 1):
                total = columns[i][i] * columns[i][j]
                for m in range(i + 1, k):
                    total = total + columns[m][i] * columns[m][j]
                inverse[:, i, j] = inverse[:, j, i] = total
    return inverse


#: A leverage h_ii with 1 − h_ii at most this is taken as 1 (:func:`_hc3_covariance`):
#: the computed 1 − h_ii of a point fitted exactly is rounding, of the order of n·ε.
LEVERAGE_ONE = 1e-8

#: Largest matrix order for which the batched factorisations work on arrays of entries.
_COMPONENT_MAX = 6


def _hc3_covariance(
    x_rows: np.ndarray, residuals: np.ndarray, sxx_inv: np.ndarray, x_mean: np.ndarray
) -> np.ndarray:
    """HC3 covariance (XᵀX)⁻¹ Xᵀ diag(e_i²/(1 − h_ii)²) X (XᵀX)⁻¹ of β̂, shape (R, p, p).

    As Σ_i w_i c_i c_iᵀ, w_i = e_i²/(1 − h_ii)², over the columns c_i of (XᵀX)⁻¹Xᵀ, from
    the centred parametrisation (``x_rows`` holds the centred covariates as (R, k, n)):
    the slopes' entries are Sxx⁻¹ x_ci and the intercept's 1/n − x̄ᵀ Sxx⁻¹ x_ci. Each
    variance is then a sum of squares. (The centred covariance mapped back through
    β₀ = α − x̄ᵀb would subtract the slopes' variances, which grow as Σ VIF, from one
    another: on nearly collinear covariates the intercept's SE lost digits as Σ VIF².) A
    leverage within :data:`LEVERAGE_ONE` of 1 gives inf: the point is fitted exactly (a
    binary covariate with one case in a level), its residual and 1 − h_ii
    are both rounding, and their ratio would be any number (SEs of 4 or 2e-16 where the
    variance is undefined), so the replicate's HC3 fit fails.
    """
    replicates, k, n = x_rows.shape
    columns = np.empty((replicates, k + 1, n))
    np.matmul(sxx_inv, x_rows, out=columns[:, 1:])  # Sxx⁻¹ x_ci
    columns[:, 0] = 1.0 / n - np.einsum("rk,rkn->rn", x_mean, columns[:, 1:])
    leverage = 1.0 / n + np.einsum("rkn,rkn->rn", x_rows, columns[:, 1:])
    with np.errstate(divide="ignore", invalid="ignore"):
        weights = np.square(residuals / (1.0 - leverage))
    weights[1.0 - leverage <= LEVERAGE_ONE] = np.inf
    with np.errstate(invalid="ignore"):
        return np.matmul(columns * weights[:, None, :], np.swapaxes(columns, 1, 2))
