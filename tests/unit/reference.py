"""Per-dataset reference implementations used by the unit tests.

Everything here works on ONE dataset at a time with the explicit design matrix
X = [1, x_1, …, x_k] and general-purpose tools (statsmodels, scipy.optimize, exact
rational arithmetic), so it shares no code and no algorithm with the batched estimators
in ``regsim.estimators``.

Objective of the MAP fit (negative log posterior up to a constant, p(σ) ∝ σ^{−a}: a = 0
flat, a = 1 Jeffreys):

    f(β, σ) = (n + a) log σ + RSS(β)/(2σ²) + ½ Σ_j (β_j − μ_j)²/η_j²,

with η_j = inf a flat prior (the term is dropped). With every η_j = inf and a = 0 it is
the negative log-likelihood up to the constant (n/2) log 2π.
"""

from __future__ import annotations

import warnings
from fractions import Fraction

import numpy as np
import statsmodels.api as sm
from scipy import integrate, optimize, stats


def design(x: np.ndarray) -> np.ndarray:
    """Design matrix [1, x] of one dataset; ``x`` has shape (n, k)."""
    x = np.asarray(x, dtype=float)
    return np.column_stack([np.ones(x.shape[0]), x])


def precisions(sd: np.ndarray) -> np.ndarray:
    """Prior precisions 1/η², 0 for a flat (infinite-sd) prior."""
    sd = np.asarray(sd, dtype=float)
    out = np.zeros_like(sd)
    finite = np.isfinite(sd)
    out[finite] = 1.0 / sd[finite] ** 2
    return out


# --------------------------------------------------------------------------- OLS


def ols_statsmodels(x: np.ndarray, y: np.ndarray, alpha: float) -> dict[str, np.ndarray]:
    """statsmodels OLS of one dataset: params, bse, conf_int, sigma = √scale, rss, df."""
    res = sm.OLS(
        np.asarray(y, dtype=float), sm.add_constant(np.asarray(x), prepend=True, has_constant="add")
    ).fit()
    return {
        "params": np.asarray(res.params),
        "bse": np.asarray(res.bse),
        "conf_int": np.asarray(res.conf_int(alpha)),
        "sigma": float(np.sqrt(res.scale)),
        "rss": float(res.ssr),
        "df": float(res.df_resid),
    }


def sigma_chi2_interval(rss: float, df: float, alpha: float) -> tuple[float, float]:
    """Exact (1 − α) interval for σ: RSS/σ² ~ χ²_df, equal tails."""
    return (
        float(np.sqrt(rss / stats.chi2.isf(alpha / 2, df))),
        float(np.sqrt(rss / stats.chi2.isf(1 - alpha / 2, df))),
    )


def ols_exact(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """OLS β̂ and s = √(RSS/(n − p)) in exact rational arithmetic (correctly rounded)."""
    rows = [[Fraction(1)] + [Fraction(float(v)) for v in row] for row in np.asarray(x)]
    ys = [Fraction(float(v)) for v in np.asarray(y)]
    n, p = len(rows), len(rows[0])
    gram = [[sum(r[i] * r[j] for r in rows) for j in range(p)] for i in range(p)]
    rhs = [sum(r[i] * v for r, v in zip(rows, ys, strict=True)) for i in range(p)]
    # Gauss-Jordan elimination on the augmented normal equations.
    aug = [gram[i] + [rhs[i]] for i in range(p)]
    for col in range(p):
        pivot = next(i for i in range(col, p) if aug[i][col] != 0)
        aug[col], aug[pivot] = aug[pivot], aug[col]
        for i in range(p):
            if i != col and aug[i][col] != 0:
                factor = aug[i][col] / aug[col][col]
                aug[i] = [a - factor * b for a, b in zip(aug[i], aug[col], strict=True)]
    beta = [aug[i][p] / aug[i][i] for i in range(p)]
    rss = sum(
        (v - sum(b * c for b, c in zip(beta, r, strict=True))) ** 2
        for r, v in zip(rows, ys, strict=True)
    )
    s2 = rss / (n - p)
    # √ of a correctly rounded float of s² is within one ulp or so of the exact root.
    return np.array([float(b) for b in beta]), float(np.sqrt(float(s2)))


# --------------------------------------------------------------- objective / derivatives


def objective(beta, sigma, X, y, mu, sd, a: int = 0) -> float:
    """f(β, σ) of the module docstring (η = inf terms dropped)."""
    beta = np.asarray(beta, dtype=float)
    r = y - X @ beta
    d = precisions(sd)
    n = X.shape[0] + a
    return float(
        n * np.log(sigma) + r @ r / (2 * sigma**2) + 0.5 * np.sum(d * (beta - np.asarray(mu)) ** 2)
    )


def gradient(beta, sigma, X, y, mu, sd, a: int = 0) -> np.ndarray:
    """Gradient of f in (β, σ)."""
    beta = np.asarray(beta, dtype=float)
    r = y - X @ beta
    d = precisions(sd)
    n = X.shape[0] + a
    g_beta = -X.T @ r / sigma**2 + d * (beta - np.asarray(mu))
    g_sigma = n / sigma - (r @ r) / sigma**3
    return np.append(g_beta, g_sigma)


def hessian(beta, sigma, X, y, mu, sd, a: int = 0) -> np.ndarray:
    """Analytic Hessian of f in (β, σ).

    H_ββ = XᵀX/σ² + D, H_βσ = 2 Xᵀr/σ³, H_σσ = −(n + a)/σ² + 3 RSS/σ⁴, r = y − Xβ.
    With every η = inf and a = 0 it is the observed information of the likelihood.
    """
    beta = np.asarray(beta, dtype=float)
    r = y - X @ beta
    d = precisions(sd)
    n, p = X.shape
    n += a
    h = np.empty((p + 1, p + 1))
    h[:p, :p] = X.T @ X / sigma**2 + np.diag(d)
    h[:p, p] = h[p, :p] = 2 * X.T @ r / sigma**3
    h[p, p] = -n / sigma**2 + 3 * (r @ r) / sigma**4
    return h


def numerical_hessian(fun, point: np.ndarray, rel_step: float = 1e-4) -> np.ndarray:
    """Central second differences of a scalar function at ``point``."""
    point = np.asarray(point, dtype=float)
    m = len(point)
    steps = rel_step * np.maximum(np.abs(point), 1.0)
    h = np.empty((m, m))
    for i in range(m):
        for j in range(i, m):
            ei = np.zeros(m)
            ej = np.zeros(m)
            ei[i] = steps[i]
            ej[j] = steps[j]
            value = (
                fun(point + ei + ej)
                - fun(point + ei - ej)
                - fun(point - ei + ej)
                + fun(point - ei - ej)
            ) / (4 * steps[i] * steps[j])
            h[i, j] = h[j, i] = value
    return h


# --------------------------------------------------------------------------- MLE


def gaussian_nll(theta: np.ndarray, X: np.ndarray, y: np.ndarray) -> float:
    """Full Gaussian negative log-likelihood in θ = (β, log σ), intercept in X."""
    beta, sigma = theta[:-1], np.exp(theta[-1])
    return float(-np.sum(stats.norm.logpdf(y, X @ beta, sigma)))


def _gaussian_nll_grad(theta: np.ndarray, X: np.ndarray, y: np.ndarray) -> np.ndarray:
    beta, sigma = theta[:-1], np.exp(theta[-1])
    r = y - X @ beta
    return np.append(-X.T @ r / sigma**2, len(y) - (r @ r) / sigma**2)


def mle_scipy(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """Minimise the full negative log-likelihood over (β, log σ) with BFGS.

    Started from β = 0 and σ = sd(y), i.e. nothing computed by least squares.
    """
    start = np.append(np.zeros(X.shape[1]), np.log(np.std(y)))
    res = optimize.minimize(
        gaussian_nll,
        start,
        args=(X, y),
        jac=_gaussian_nll_grad,
        method="BFGS",
        options={"gtol": 1e-9, "maxiter": 10_000},
    )
    # Polish: BFGS stops on precision loss close to the optimum; a trust-region run with
    # the exact Hessian, then a root solve of the gradient, takes it to machine precision.
    sd = np.full(X.shape[1], np.inf)
    beta, sigma = _trust_polish(
        res.x[:-1], float(np.exp(res.x[-1])), X, y, np.zeros(X.shape[1]), sd
    )
    return beta, sigma


# --------------------------------------------------------------------------- MAP


def _trust_polish(beta0, sigma0, X, y, mu, sd, a: int = 0) -> tuple[np.ndarray, float]:
    """Local minimum of f from (β0, σ0) by scipy's trust-exact in (β − β0, log σ)."""
    beta0 = np.asarray(beta0, dtype=float)
    p = len(beta0)

    def unpack(z):
        return beta0 + z[:p], float(np.exp(z[p]))

    def fun(z):
        b, s = unpack(z)
        return objective(b, s, X, y, mu, sd, a)

    def jac(z):
        b, s = unpack(z)
        g = gradient(b, s, X, y, mu, sd, a)
        g[p] *= s
        return g

    def hess(z):
        b, s = unpack(z)
        g = gradient(b, s, X, y, mu, sd, a)
        h = hessian(b, s, X, y, mu, sd, a)
        h[:p, p] *= s
        h[p, :p] *= s
        h[p, p] = s * s * h[p, p] + s * g[p]
        return h

    # A large max_trust_radius lets the search cross |β0| ~ 1e6 in a few steps.
    res = optimize.minimize(
        fun,
        np.append(np.zeros(p), np.log(sigma0)),
        jac=jac,
        hess=hess,
        method="trust-exact",
        options={"gtol": 1e-12, "maxiter": 1000, "max_trust_radius": 1e12},
    )
    # Near the optimum f changes by less than its own rounding, so a minimiser stops at
    # |∇f| ~ 1e-8; solving ∇f = 0 from there (same basin) reaches machine precision.
    # (hybr reports "no further improvement" once |∇f| is at rounding level, so the
    # result is judged by its gradient and by staying next to the minimiser's point.)
    polished = optimize.root(jac, res.x, jac=hess, method="hybr", options={"xtol": 1e-15})
    near = np.max(np.abs(polished.x - res.x)) <= 1e-4 * (1.0 + np.max(np.abs(res.x)))
    better = np.max(np.abs(jac(polished.x))) <= np.max(np.abs(jac(res.x)))
    z = polished.x if near and better else res.x
    return unpack(z)


def ols_start(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """The MLE by ``np.linalg.lstsq``: β̂ and √(RSS/n)."""
    beta = np.linalg.lstsq(X, y, rcond=None)[0]
    r = y - X @ beta
    return beta, float(np.sqrt(r @ r / len(y)))


def map_scipy(X, y, mu, sd, a: int = 0) -> dict[str, object]:
    """MAP by local minimisation from the MLE and from the prior mean; best of the two.

    Returns the best point and both local solutions with their objective values.
    """
    mu = np.asarray(mu, dtype=float)
    b_mle, s_mle = ols_start(X, y)
    r_mu = y - X @ mu
    s_mu = float(np.sqrt(r_mu @ r_mu / len(y)))
    runs = []
    for b0, s0 in ((b_mle, s_mle), (mu, s_mu)):
        b, s = _trust_polish(b0, s0, X, y, mu, sd, a)
        runs.append((objective(b, s, X, y, mu, sd, a), b, s))
    best = min(runs, key=lambda run: run[0])
    return {
        "value": best[0],
        "beta": best[1],
        "sigma": best[2],
        "from_mle": runs[0],
        "from_prior": runs[1],
    }


def profile_brute_force(X, y, mu, sd, points: int = 20_000) -> tuple[float, float, float]:
    """Dense search of the profile min_β f(β, e^t) over t: (min value, its t, grid step).

    t runs from log √(RSS_ols/n) to log √(RSS(μ)/n); at each point β(σ) solves
    (XᵀX + σ² D) β = Xᵀy + σ² D μ.
    """
    mu = np.asarray(mu, dtype=float)
    n = len(y)
    _, s_low = ols_start(X, y)
    r_mu = y - X @ mu
    s_high = float(np.sqrt(r_mu @ r_mu / n))
    lo, hi = sorted((np.log(s_low), np.log(s_high)))
    t = np.linspace(lo, hi, points)
    s2 = np.exp(2 * t)
    d = precisions(sd)
    gram, xty = X.T @ X, X.T @ y
    lhs = gram[None, :, :] + s2[:, None, None] * np.diag(d)[None, :, :]
    rhs = xty[None, :] + s2[:, None] * (d * mu)[None, :]
    beta = np.linalg.solve(lhs, rhs[:, :, None])[:, :, 0]
    resid = y[None, :] - beta @ X.T
    values = (
        n * t + np.sum(resid**2, axis=1) / (2 * s2) + 0.5 * np.sum(d * (beta - mu) ** 2, axis=1)
    )
    best = int(np.argmin(values))
    return float(values[best]), float(t[best]), float(t[1] - t[0])


def newton_local(beta0, sigma0, X, y, mu, sd, max_iter: int = 200) -> tuple[np.ndarray, float]:
    """Plain damped Newton in (β, log σ) from a start: finds the NEAREST local mode.

    Newton steps where the Hessian is positive definite, gradient steps otherwise, with
    backtracking on f. It has no global search, which is what the bimodal test needs.
    """
    p = len(beta0)
    z = np.append(np.asarray(beta0, dtype=float), np.log(sigma0))

    def parts(z):
        b, s = z[:p], float(np.exp(z[p]))
        g = gradient(b, s, X, y, mu, sd)
        h = hessian(b, s, X, y, mu, sd)
        h[:p, p] *= s
        h[p, :p] *= s
        h[p, p] = s * s * h[p, p] + s * g[p]
        g[p] *= s
        return objective(b, s, X, y, mu, sd), g, h

    for _ in range(max_iter):
        value, g, h = parts(z)
        try:
            np.linalg.cholesky(h)
            step = -np.linalg.solve(h, g)
        except np.linalg.LinAlgError:
            step = -g
        scale = 1.0
        while scale > 1e-12:
            trial = z + scale * step
            if parts(trial)[0] <= value:
                break
            scale /= 2
        z_new = z + scale * step
        if np.max(np.abs(z_new - z)) <= 1e-13 * (1 + np.max(np.abs(z))):
            z = z_new
            break
        z = z_new
    return z[:p], float(np.exp(z[p]))


# ------------------------------------------------------------------ high precision


def fits_mpmath(x, y, mu, sd, dps: int = 50, scan: int = 120) -> dict:
    """OLS, MLE and MAP of one dataset in ``dps``-digit arithmetic (mpmath).

    The data are taken as the exact binary values they hold. OLS and MLE solve the normal
    equations. The MAP mode solves the stationarity equation of the profile in t = log σ,

        h'(t) = n − RSS(β(σ))/σ² = 0,   β(σ) = (XᵀX + σ²D)⁻¹ (Xᵀy + σ²D μ),

    independently of regsim: h' is scanned on ``scan`` points of t between the OLS fit
    (σ² = RSS₀/n) and σ² = RSS(β(σ → ∞))/n, every sign change from − to + is polished
    by ``mpmath.findroot`` (Anderson–Björk on the bracket) and the mode with the lowest
    h(t) = n t + RSS(β)/(2σ²) + ½ (β − μ)ᵀ D (β − μ) is kept. The Laplace covariance is
    the inverse of the analytic Hessian of f(β, σ) at that mode. Returns, per method,
    ``estimate`` and ``se`` arrays (β_0 … β_k, σ) rounded once to float64, plus
    ``modes``: the number of local MAP modes found.
    """
    import mpmath

    with mpmath.workdps(dps):
        mp = mpmath.mp
        n, k = np.asarray(x).shape
        p = k + 1
        X = mp.matrix([[1] + [mp.mpf(float(v)) for v in row] for row in np.asarray(x)])
        Y = mp.matrix([mp.mpf(float(v)) for v in np.asarray(y)])
        gram = X.T * X
        xty = X.T * Y
        gram_inv = mp.inverse(gram)
        beta = gram_inv * xty
        rss = sum(r * r for r in Y - X * beta)
        s = mp.sqrt(rss / (n - p))
        sigma_mle = mp.sqrt(rss / n)
        out = {
            "ols": (
                [beta[j] for j in range(p)] + [s],
                [s * mp.sqrt(gram_inv[j, j]) for j in range(p)] + [s / mp.sqrt(2 * (n - p))],
            ),
            "mle": (
                [beta[j] for j in range(p)] + [sigma_mle],
                [sigma_mle * mp.sqrt(gram_inv[j, j]) for j in range(p)]
                + [sigma_mle / mp.sqrt(2 * n)],
            ),
        }
        prec = [mp.mpf(0) if np.isinf(float(v)) else 1 / mp.mpf(float(v)) ** 2 for v in sd]
        d = mp.diag(prec)
        d_mu = mp.matrix([prec[j] * mp.mpf(float(mu[j])) for j in range(p)])

        def beta_at(t):
            s2 = mp.exp(2 * t)
            return mp.lu_solve(gram + s2 * d, xty + s2 * d_mu)

        def rss_at(t):
            r = Y - X * beta_at(t)
            return sum(v * v for v in r)

        def slope(t):
            return n - rss_at(t) / mp.exp(2 * t)

        def profile(t):
            b = beta_at(t)
            r = Y - X * b
            penalty = sum(prec[j] * (b[j] - mp.mpf(float(mu[j]))) ** 2 for j in range(p))
            return n * t + sum(v * v for v in r) / (2 * mp.exp(2 * t)) + penalty / 2

        t_low = mp.log(rss / n) / 2
        t_high = mp.log(rss_at(t_low + 40) / n) / 2  # RSS(β(σ)) increases with σ
        grid = [t_low + (t_high - t_low) * i / (scan - 1) for i in range(scan)]
        slopes = [slope(t) for t in grid]
        modes = []
        for i in range(scan - 1):
            if slopes[i] <= 0 < slopes[i + 1]:
                bracket = (grid[i], grid[i + 1])
                modes.append(mp.findroot(slope, bracket, solver="anderson"))
        if not modes:  # the mode sits at an end of the bracket (e.g. every prior flat)
            modes = [t_low if abs(slopes[0]) <= abs(slopes[-1]) else t_high]
        t_mode = min(modes, key=profile)
        sigma = mp.exp(t_mode)
        b = beta_at(t_mode)
        r = Y - X * b
        rss_b = sum(v * v for v in r)
        xtr = X.T * r
        h = mp.matrix(p + 1, p + 1)
        for i in range(p):
            for j in range(p):
                h[i, j] = gram[i, j] / sigma**2 + d[i, j]
            h[i, p] = h[p, i] = 2 * xtr[i] / sigma**3
        h[p, p] = -n / sigma**2 + 3 * rss_b / sigma**4
        cov = mp.inverse(h)
        out["map"] = (
            [b[j] for j in range(p)] + [sigma],
            [mp.sqrt(cov[j, j]) for j in range(p + 1)],
        )
        result = {
            method: {
                "estimate": np.array([float(v) for v in est]),
                "se": np.array([float(v) for v in se]),
            }
            for method, (est, se) in out.items()
        }
        result["modes"] = len(modes)
        return result


# ------------------------------------------------------------------ exact posterior


class PosteriorReference:
    """The exact marginal posterior of one dataset by adaptive quadrature over t = log σ.

    Model: y ~ N(Xβ, σ² I), independent priors β_j ~ N(μ_j, η_j²) (η_j = inf: flat) and
    p(σ) ∝ σ^{−a} (a = 0 flat, 1 Jeffreys). For fixed σ (s = σ²), β is normal with
    covariance V = s (XᵀX + sD)⁻¹ and mean m = V (Xᵀy/s + Dμ), D = diag(1/η²); integrating
    β out gives the density of t,

        log p(t | y) = (1 − a − n + p) t − ½ [‖y − X m‖²/s + (m − μ)ᵀ D (m − μ)]
                       − ½ log det(XᵀX + sD) + const,

    computed here directly from X and y at each t (``numpy.linalg``), independently of
    regsim. Every summary is an integral over t by ``scipy.integrate.quad`` (tolerance
    1e-12 relative), split at the local modes of p(t | y) and at points a few widths
    either side of them; quantiles are roots (``brentq``) of the marginal CDFs, β_j's being
    ∫ Φ((q − m_j)/√V_jj) p(t | y) dt.
    """

    def __init__(self, x, y, mu, sd, sigma_prior: str = "flat") -> None:
        self.X = design(x)
        self.y = np.asarray(y, dtype=float)
        self.n, self.p = self.X.shape
        self.mu = np.asarray(mu, dtype=float)
        self.prec = precisions(sd)
        self.a = {"flat": 0, "jeffreys": 1}[sigma_prior]
        self.gram = self.X.T @ self.X
        self.xty = self.X.T @ self.y
        self._cache: dict[float, tuple[float, np.ndarray, np.ndarray]] = {}
        beta = np.linalg.lstsq(self.X, self.y, rcond=None)[0]
        resid = self.y - self.X @ beta
        centre = 0.5 * np.log(resid @ resid / self.n)
        # Local modes: a scan of log p over a wide range of t, each maximum refined. Vague
        # proper priors at n = p + 1 leave a plateau up to about σ = η √tr(XᵀX).
        finite = self.prec[self.prec > 0]
        reach = 12.0
        if len(finite):
            reach += max(0.0, 0.5 * np.log(np.trace(self.gram) / finite.min()))
        grid = np.linspace(centre - 8.0, centre + reach, int(200 * (8.0 + reach)) + 1)
        values = np.array([self._raw(t)[0] for t in grid])
        peaks = [
            i
            for i in range(1, len(grid) - 1)
            if values[i] >= values[i - 1] and values[i] > values[i + 1]
        ]
        modes = []
        for i in peaks:
            res = optimize.minimize_scalar(
                lambda t: -self._raw(t)[0],
                bounds=(grid[i - 1], grid[i + 1]),
                method="bounded",
                options={"xatol": 1e-12},
            )
            modes.append(float(res.x))
        self.modes = modes
        self.top = max(self._raw(t)[0] for t in modes)
        # Split points: each mode and ±1, 3, 6, 10 widths about it (width from the
        # curvature by finite differences), then [last, inf).
        points = []
        for t in modes:
            h = 1e-4
            curv = -(self._raw(t + h)[0] - 2 * self._raw(t)[0] + self._raw(t - h)[0]) / h**2
            # At most 2 in t: a plateau's curvature says nothing of where its mass is.
            width = min(1.0 / np.sqrt(max(curv, 1e-12)), 2.0)
            points += [t + k * width for k in (-10, -6, -3, -1, 0, 1, 3, 6, 10)]
        points = sorted(points)
        self.points = [points[0] - 30.0 * (points[-1] - points[0] + 1.0)] + points
        self.z = self._integral(lambda t: 1.0)

    def _raw(self, t: float) -> tuple[float, np.ndarray, np.ndarray]:
        t = float(t)
        hit = self._cache.get(t)
        if hit is not None:
            return hit
        s = np.exp(2.0 * t)
        system = self.gram + s * np.diag(self.prec)
        m = np.linalg.solve(system, self.xty + s * self.prec * self.mu)
        r = self.y - self.X @ m
        _, logdet = np.linalg.slogdet(system)
        var = s * np.diag(np.linalg.inv(system))
        # Far below the modes, where the integrals' first piece reaches, s underflows to
        # 0 or RSS/s overflows: the log density is then −inf, its density 0, as it should.
        with np.errstate(divide="ignore", over="ignore"):
            logp = (
                (1 - self.a - self.n + self.p) * t
                - 0.5 * (r @ r / s + np.sum(self.prec * (m - self.mu) ** 2))
                - 0.5 * logdet
            )
        out = (float(logp), m, var)
        self._cache[t] = out
        return out

    def density(self, t: float) -> float:
        """p(t | y) up to the normaliser (largest mode = 1)."""
        return float(np.exp(self._raw(t)[0] - self.top))

    def _integral(self, g, upper: float = np.inf, scale: float = 1.0) -> float:
        """∫ g(t) p(t | y) dt over (−∞, upper), unnormalised, to 1e-13 · scale · the mass
        near the modes (or 1e-12 relative); the tail beyond the last split point in
        u = e^{−(t − T)} ∈ (0, 1], where the density is a power of u."""
        total = 0.0
        tol = 1e-13 * scale * getattr(self, "z", 0.0)
        ends = [p for p in self.points if p < upper] + [min(upper, self.points[-1])]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", integrate.IntegrationWarning)
            for a, b in zip(ends[:-1], ends[1:], strict=False):
                total += integrate.quad(
                    lambda t: self._weighted(g, t), a, b, epsabs=tol, epsrel=1e-12, limit=400
                )[0]
            if upper > self.points[-1]:
                last = self.points[-1]
                low = np.exp(-(upper - last)) if np.isfinite(upper) else 0.0

                def tail(u):
                    t = last - np.log(u)
                    return self._weighted(g, t) / u if t < 300.0 else 0.0

                total += integrate.quad(tail, low, 1.0, epsabs=tol, epsrel=1e-12, limit=400)[0]
        return total

    def _weighted(self, g, t: float) -> float:
        """g(t) p(t | y); 0 where the density is (far left σ² underflows to 0, and the
        conditional variances with it, so g may be NaN there)."""
        density = self.density(t)
        return g(t) * density if density > 0.0 else 0.0

    def mean_sd(self) -> tuple[np.ndarray, np.ndarray]:
        """Posterior means and sds of β_0 … β_{p−1}, σ (central second moments)."""
        t_top = max(self.modes, key=lambda t: self._raw(t)[0])
        _, m_top, var_top = self._raw(t_top)
        means, sds = [], []
        for j in range(self.p):
            size = abs(m_top[j]) + np.sqrt(var_top[j])
            m = self._integral(lambda t, j=j: self._raw(t)[1][j], scale=size) / self.z
            var = (
                self._integral(
                    lambda t, j=j, m=m: self._raw(t)[2][j] + (self._raw(t)[1][j] - m) ** 2,
                    scale=var_top[j],
                )
                / self.z
            )
            means.append(m)
            sds.append(np.sqrt(var))
        sigma = np.exp(t_top)
        m = self._integral(np.exp, scale=sigma) / self.z
        var = self._integral(lambda t: (np.exp(t) - m) ** 2, scale=sigma**2 / self.n) / self.z
        return np.array([*means, m]), np.array([*sds, np.sqrt(var)])

    def beta_cdf(self, j: int, q: float) -> float:
        """P(β_j ≤ q | y)."""

        def g(t):
            _, m, var = self._raw(t)
            return stats.norm.cdf((q - m[j]) / np.sqrt(var[j]))

        return self._integral(g) / self.z

    def sigma_cdf(self, x: float) -> float:
        """P(σ ≤ x | y)."""
        return self._integral(lambda t: 1.0, upper=float(np.log(x))) / self.z

    def intervals(self, alpha: float) -> tuple[np.ndarray, np.ndarray]:
        """Equal-tailed (1 − α) credible intervals of β_0 … β_{p−1}, σ."""
        means, sds = self.mean_sd_cached()
        lower, upper = [], []
        for j in range(self.p + 1):
            cdf = (lambda q, j=j: self.beta_cdf(j, q)) if j < self.p else self.sigma_cdf
            for level, out in ((alpha / 2, lower), (1 - alpha / 2, upper)):
                lo, hi = means[j] - 4 * sds[j], means[j] + 4 * sds[j]
                if j == self.p:
                    lo = max(lo, 1e-300)
                while cdf(lo) > level:
                    lo = means[j] - 2 * (means[j] - lo) if j < self.p else lo / 2
                while cdf(hi) < level:
                    hi = means[j] + 2 * (hi - means[j])
                out.append(
                    optimize.brentq(
                        lambda q, cdf=cdf, level=level: cdf(q) - level,
                        lo,
                        hi,
                        xtol=1e-14 * max(sds[j], 1e-300),
                        rtol=1e-15,
                    )
                )
        return np.array(lower), np.array(upper)

    def mean_sd_cached(self) -> tuple[np.ndarray, np.ndarray]:
        if not hasattr(self, "_mean_sd"):
            self._mean_sd = self.mean_sd()
        return self._mean_sd
