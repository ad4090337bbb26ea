"""The conditional posterior of β given σ along MAP's path, and the density of t = log σ.

For fixed σ the posterior of β is normal; its mean is MAP's conditional mode β(s),
s = σ², and the density of t follows from RSS(s), the prior's quadratic form along that
path and log det(XᵀX + sD). :class:`_Posterior` evaluates them (and their slope in s)
at many points of t for many replicates at once, for the search of the modes and for the
quadrature rules.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from regsim.estimators.linalg import cholesky, dot, lower_inverse, matvec, solve
from regsim.estimators.map import _Path

#: Largest number of array elements one evaluation of the conditional posterior works
#: on at once (nodes × replicates): larger temporaries cost a page fault each.
_CHUNK = 12_000


@dataclass
class _Values:
    """The posterior along the path at s = σ², arrays of ``s``'s shape.

    ``logp`` is log p(t | y) up to a constant (t = log σ); ``m`` and ``v`` hold the
    conditional means m_j(s) and variances V_jj(s) of β, one array per coefficient;
    ``r`` is R(s) = RSS(s) + s·p_data(s) of the stationarity equation and ``r_slope`` its
    derivative in s (both only when asked for; else ``r`` is RSS(s)).
    """

    logp: Any
    m: list[np.ndarray]
    v: list[np.ndarray]
    r: np.ndarray
    r_slope: np.ndarray | None = None


class _Counts:
    """What the quadrature counts of a posterior with prior means ``mean`` and precisions
    ``precision`` (0: flat), ``n`` observations and p(σ) ∝ σ^{−a}: shared by the study's
    batched posterior (:class:`_Posterior`) and one dataset's
    (``regsim.estimators.single``)."""

    @property
    def p(self) -> int:
        return len(self.mean)  # type: ignore[attr-defined]

    @property
    def flat(self) -> int:
        """|F|, the number of coefficients with a flat prior."""
        return sum(1 for prec in self.precision if not prec)  # type: ignore[attr-defined]

    @property
    def level(self) -> int:
        """e = n − 1 + a: the stationarity equation is R(s) = e·s."""
        return self.n - 1 + self.a  # type: ignore[attr-defined]

    @property
    def nu(self) -> int:
        """ν = n − |F| − 1 + a: p(σ | y) falls as σ^{−(ν + 1)}."""
        return self.level - self.flat


@dataclass(frozen=True)
class _Posterior(_Counts):
    """The marginal posterior of log σ of R datasets and one prior, along the MAP path.

    Attributes
    ----------
    path : _Path
        MAP's conditional-mode path (:func:`regsim.estimators.map._prior_path`).
    beta_hat : list of ndarray
        β̂_j by component, shape (R,).
    mean : tuple of float
        Prior means.
    n, a : int
        Observations and the prior on σ, p(σ) ∝ σ^{−a}.
    gram_d : list of ndarray
        XᵀX d by component (d = μ − β̂).
    """

    path: _Path
    beta_hat: list[np.ndarray]
    mean: tuple[float, ...]
    n: int
    a: int
    gram_d: list[np.ndarray]

    @classmethod
    def build(
        cls, path: _Path, beta_hat: list[np.ndarray], mean: Sequence[float], n: int, a: int
    ) -> _Posterior:
        """The posterior of ``path``; XᵀX d is computed once here."""
        return cls(path, beta_hat, tuple(mean), n, a, matvec(path.gram, path.d))

    @property
    def precision(self) -> tuple[float, ...]:
        return self.path.precision

    @property
    def replicates(self) -> int:
        return len(self.path.rss0)

    def take(self, index: Any) -> _Posterior:
        """The posterior of the replicates ``index`` (an index array or a slice)."""
        return _Posterior(
            self.path.take(index),
            [b[index] for b in self.beta_hat],
            self.mean,
            self.n,
            self.a,
            [g[index] for g in self.gram_d],
        )

    def evaluate(
        self,
        s: np.ndarray,
        t: np.ndarray,
        *,
        slope: bool = False,
        moments: bool = True,
        density: bool = True,
    ) -> _Values:
        """The posterior along the path at s = σ² = e^{2t}; ``s`` and ``t`` broadcast
        with the replicates.

        With A = XᵀX + sD (D the prior precisions), δ = s A⁻¹ D d (d = μ − β̂) and
        μ − β(s) = A⁻¹ XᵀX d from two solves (each accurate where the other cancels):

        * m(s) = β̂ + δ or μ − A⁻¹XᵀXd, whichever correction is smaller;
        * RSS(s) = RSS₀ + δᵀXᵀXδ, prior(s) = Σ_j d_j (β_j − μ_j)²;
        * V_jj(s) = s (A⁻¹)_jj, log det A from the Cholesky pivots;
        * p_data(s) = p − Σ_j d_j V_jj(s), R(s) = RSS(s) + s p_data(s);
        * log p(t | y) = (p − e) t − ½ [RSS(s)/s + prior(s)] − ½ log det A,  e = n − 1 + a.

        With ``slope`` (for the modes): R(s) and R'(s) = RSS'(s) + p − 2s tr(A⁻¹D) +
        s² tr(A⁻¹DA⁻¹D), where RSS'(s) = 2 (XᵀXδ)ᵀ A⁻¹ D (μ − β). ``moments`` asks for m
        and V, ``density`` for log p(t | y); what is not asked for is left empty.
        """
        path, p = self.path, self.p
        precision = path.precision
        lower, inv_diag, pivots = cholesky(path.system(s))
        delta = [s * u for u in solve(lower, inv_diag, path.prior_d)]
        gram_delta = matvec(path.gram, delta)
        rss = path.rss0 + dot(delta, gram_delta)
        away: list[Any] = []
        if density or moments or slope:
            away = solve(lower, inv_diag, self.gram_d)
        logp: Any = None
        if density:
            prior_term = sum(prec * w * w for prec, w in zip(precision, away, strict=True) if prec)
            log_det = np.log(pivots[0])
            for pivot in pivots[1:]:
                log_det = log_det + np.log(pivot)
            logp = (p - self.level) * t - 0.5 * (rss / s + prior_term) - 0.5 * log_det
        # L⁻¹ only for V and R' (the density alone needs neither).
        inverse = lower_inverse(lower, inv_diag) if moments or slope else []
        diagonal: list[Any] = []
        for j in range(p):
            if moments or (slope and precision[j]):
                total = inverse[j][j] * inverse[j][j]
                for k in range(j + 1, p):
                    total = total + inverse[k][j] * inverse[k][j]
                diagonal.append(total)
            else:
                diagonal.append(None)
        m: list[np.ndarray] = []
        v: list[np.ndarray] = []
        if moments:
            v = [s * entry for entry in diagonal]
            m = [
                np.where(np.abs(dl) <= np.abs(w), b + dl, mu - w)
                for b, dl, w, mu in zip(self.beta_hat, delta, away, self.mean, strict=True)
            ]
        values = _Values(logp, m, v, rss)
        if slope:
            trace = sum(
                prec * entry for prec, entry in zip(precision, diagonal, strict=True) if prec
            )
            values.r = rss + s * (p - s * trace)
            rhs = [prec * w if prec else 0.0 for prec, w in zip(precision, away, strict=True)]
            rss_slope = 2.0 * dot(gram_delta, solve(lower, inv_diag, rhs))
            informative = [j for j in range(p) if precision[j]]
            square = 0.0
            for a, i in enumerate(informative):
                for j in informative[a:]:
                    # (A⁻¹)_ij = Σ_{k ≥ j} (L⁻¹)_ki (L⁻¹)_kj (j ≥ i); A⁻¹ is symmetric,
                    # so each pair off the diagonal counts twice.
                    entry = inverse[j][i] * inverse[j][j]
                    for k in range(j + 1, p):
                        entry = entry + inverse[k][i] * inverse[k][j]
                    weight = precision[i] * precision[j] * (1.0 if i == j else 2.0)
                    square = square + weight * entry * entry
            values.r_slope = rss_slope + p - 2.0 * s * trace + s * s * square
        return values

    def stationarity(self, path: _Path, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """R(s) and RSS(s) of the replicates of ``path`` (for the mode scan)."""
        precision = path.precision
        lower, inv_diag, _ = cholesky(path.system(s))
        delta = [s * u for u in solve(lower, inv_diag, path.prior_d)]
        rss = path.rss0 + dot(delta, matvec(path.gram, delta))
        inverse = lower_inverse(lower, inv_diag)
        trace = 0.0
        for j in range(self.p):
            if precision[j]:
                total = inverse[j][j] * inverse[j][j]
                for k in range(j + 1, self.p):
                    total = total + inverse[k][j] * inverse[k][j]
                trace = trace + precision[j] * total
        return rss + s * (self.p - s * trace), rss
