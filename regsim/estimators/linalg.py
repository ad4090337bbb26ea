"""Batched algebra on tiny symmetric matrices, written out on arrays of their entries.

Batched np.linalg calls cost ~0.2–1.5 µs per tiny p × p matrix, far more than the
arithmetic; so the factorisations and solves below are written out on (R,)-shaped (or
(R, m)-shaped) arrays of matrix entries, with Python loops over the p matrix indices
only. A symmetric matrix is a nested list ``a`` with ``a[i][j] is a[j][i]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def entries(matrix: np.ndarray) -> list[list[np.ndarray]]:
    """Entries of a stack of symmetric matrices, shape (R, m, m), as contiguous (R,) arrays."""
    m = matrix.shape[-1]
    rows: list[list[Any]] = [[None] * m for _ in range(m)]
    for i in range(m):
        for j in range(i + 1):
            rows[i][j] = rows[j][i] = np.ascontiguousarray(matrix[:, i, j])
    return rows


def cholesky(
    a: Sequence[Sequence[Any]],
) -> tuple[list[list[Any]], list[np.ndarray], list[np.ndarray]]:
    """Cholesky factorisation A = L Lᵀ of a batch of symmetric matrices given by entries.

    Returns
    -------
    lower : nested list
        ``lower[i][j]`` = L_ij for j < i (the diagonal is not stored).
    inv_diag : list of ndarray
        1/L_ii.
    pivots : list of ndarray
        L_ii², all > 0 exactly where A is positive definite (NaN propagates to them).
    """
    m = len(a)
    lower: list[list[Any]] = [[None] * m for _ in range(m)]
    inv_diag, pivots = [], []
    for j in range(m):
        pivot = a[j][j]
        for k in range(j):
            pivot = pivot - lower[j][k] * lower[j][k]
        inv = 1.0 / np.sqrt(pivot)
        pivots.append(pivot)
        inv_diag.append(inv)
        for i in range(j + 1, m):
            entry = a[i][j]
            for k in range(j):
                entry = entry - lower[i][k] * lower[j][k]
            lower[i][j] = entry * inv
    return lower, inv_diag, pivots


def solve(lower: list[list[Any]], inv_diag: list[np.ndarray], b: Sequence[Any]) -> list[Any]:
    """x = A⁻¹ b from the factor of :func:`cholesky` (forward, then back substitution)."""
    m = len(b)
    z: list[Any] = []
    for i in range(m):
        acc = b[i]
        for k in range(i):
            acc = acc - lower[i][k] * z[k]
        z.append(acc * inv_diag[i])
    x: list[Any] = [None] * m
    for i in reversed(range(m)):
        acc = z[i]
        for k in range(i + 1, m):
            acc = acc - lower[k][i] * x[k]
        x[i] = acc * inv_diag[i]
    return x


def lower_inverse(lower: list[list[Any]], inv_diag: list[np.ndarray]) -> list[list[Any]]:
    """L⁻¹ from the factor of :func:`cholesky`: ``result[i][j]`` = (L⁻¹)_ij for j ≤ i."""
    m = len(inv_diag)
    inverse: list[list[Any]] = [[None] * m for _ in range(m)]
    for j in range(m):
        inverse[j][j] = inv_diag[j]
        for i in range(j + 1, m):
            acc = lower[i][j] * inverse[j][j]
            for k in range(j + 1, i):
                acc = acc + lower[i][k] * inverse[k][j]
            inverse[i][j] = -acc * inv_diag[i]
    return inverse


def inverse_diagonal(lower: list[list[Any]], inv_diag: list[np.ndarray]) -> list[np.ndarray]:
    """Diagonal of A⁻¹ = L⁻ᵀ L⁻¹: the squared column norms of L⁻¹."""
    inverse = lower_inverse(lower, inv_diag)
    m = len(inv_diag)
    diagonal = []
    for j in range(m):
        total = inverse[j][j] * inverse[j][j]
        for i in range(j + 1, m):
            total = total + inverse[i][j] * inverse[i][j]
        diagonal.append(total)
    return diagonal


def matvec(a: Sequence[Sequence[Any]], v: Sequence[Any]) -> list[Any]:
    """A v for entries ``a`` and components ``v``."""
    out = []
    for row in a:
        acc = row[0] * v[0]
        for k in range(1, len(v)):
            acc = acc + row[k] * v[k]
        out.append(acc)
    return out


def dot(u: Sequence[Any], v: Sequence[Any]) -> Any:
    """uᵀ v for components ``u``, ``v``."""
    acc = u[0] * v[0]
    for k in range(1, len(u)):
        acc = acc + u[k] * v[k]
    return acc
