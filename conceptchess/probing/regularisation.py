"""Regularisation paths for many targets at once, λ chosen on a validation split.

:func:`regression_path` (L1 linear regression, the Lasso) and :func:`logistic_path` (L1 logistic
regression) fit every target column of ``Y`` on the same standardised design (a :class:`Design`:
training rows, validation rows, and the Gram matrices and Cholesky factors shared by every target
and by both kinds of probe). Each walks a grid of λ per target, from the target's ``λ_max`` (all
weights zero) down to ``λ_max · min_ratio``, warm-starting each λ from the previous solution; after
each λ the validation score decides the best so far, and a target leaves the path when ``patience``
λ values in a row have not beaten it. The chosen λ is then refined (more iterations from its state).
Targets may have missing labels (``mask`` false, e.g. a Stockfish term undefined in check): targets
sharing a mask share one Gram matrix.

Scores: R² for regression; balanced accuracy for classification, predicting the positive class when
the fitted probability exceeds the training prevalence (the decision rule that maximises balanced
accuracy for calibrated probabilities, so no class weights are needed).

>>> g = torch.Generator().manual_seed(0)
>>> X = torch.randn(300, 10, generator=g); y = 2 * X[:, :1] - X[:, 3:4]
>>> fit = regression_path(Design(X[:200], X[200:]), y[:200], None, y[200:], None)
>>> (fit.coef[:, 0].abs() > 1e-2).nonzero().ravel().tolist(), round(float(fit.val_score[0]), 3)
([0, 3], 1.0)
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch

from conceptchess.probing.solvers import ADMMState, L1Quadratic

#: The default λ grid, as fractions of each target's λ_max: λ_max itself (the all-zero probe, free),
#: then half-decade steps down to 10⁻³ (scikit-learn's LassoCV default ``eps``).
DEFAULT_RATIOS = (1.0, 0.3, 0.1, 0.03, 0.01, 0.003, 0.001)
#: λ values in a row without a better validation score before a target leaves the path. By default
#: every target walks the whole grid: validation scores along a path need not be unimodal (with more
#: features than training positions, e.g. material_diff on the 112 input planes from 2,000 positions,
#: mid-path probes score far below the all-zero one before the small-λ end recovers R² ≈ 1).
DEFAULT_PATIENCE = len(DEFAULT_RATIOS)


@dataclass
class PathFit:
    """Per target (column): the weights ``coef (D, T)`` at the chosen λ, ``intercept (T,)``,
    ``alpha (T,)`` (the chosen λ, scikit-learn's α), ``val_score (T,)``, how many λ values were
    tried, and for classification the training prevalence (the decision threshold)."""

    coef: torch.Tensor
    intercept: torch.Tensor
    alpha: torch.Tensor
    val_score: torch.Tensor
    steps: torch.Tensor
    prevalence: torch.Tensor | None = None

    @classmethod
    def zeros(cls, D: int, T: int, dtype, classification: bool = False) -> "PathFit":
        z = functools.partial(torch.zeros, T, dtype=dtype)
        return cls(torch.zeros(D, T, dtype=dtype), z(), z(), z(), torch.zeros(T, dtype=torch.long), z() if classification else None)

    def put(self, cols: list[int], coef, intercept, alpha, val_score, steps, prevalence=None) -> None:
        """Fill the columns ``cols`` (one mask group's targets)."""
        c = torch.tensor(cols)
        self.coef[:, c], self.intercept[c], self.alpha[c], self.val_score[c], self.steps[c] = coef, intercept, alpha, val_score, steps
        if prevalence is not None:
            self.prevalence[c] = prevalence


# -- scores ------------------------------------------------------------------------------------------
def r2_scores(y: torch.Tensor, pred: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """R² per column (scikit-learn's definition: 1 − SSE/SST around the column's own mean)."""
    m = torch.ones_like(y) if mask is None else mask.to(y.dtype)
    n = m.sum(0).clamp_min(1.0)
    mean = (y * m).sum(0) / n
    sst = (((y - mean) ** 2) * m).sum(0)
    sse = (((y - pred) ** 2) * m).sum(0)
    return torch.where(sst > 0, 1.0 - sse / sst.clamp_min(1e-30), torch.zeros_like(sst))


def balanced_accuracies(y: torch.Tensor, pred: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Balanced accuracy per column: the mean of the true-positive and true-negative rates."""
    m = torch.ones_like(y) if mask is None else mask.to(y.dtype)
    pos, neg = y * m, (1.0 - y) * m
    tpr = (pred * pos).sum(0) / pos.sum(0).clamp_min(1.0)
    tnr = ((1.0 - pred) * neg).sum(0) / neg.sum(0).clamp_min(1.0)
    return (tpr + tnr) / 2.0


# -- the design ------------------------------------------------------------------------------------------
@dataclass
class _Group:
    rows: torch.Tensor | None  # training rows of this mask (None: all)
    G: torch.Tensor
    mu: torch.Tensor
    solver: L1Quadratic

    def X(self, design: "Design") -> torch.Tensor:
        return design.X if self.rows is None else design.X[self.rows]


class Design:
    """Standardised training rows ``X (n, D)`` and validation rows ``Xv``, with per-mask Gram caches.

    The Gram matrix ``XcᵀXc/n`` (``Xc`` centred on the rows used) costs ``n·D²`` — the largest single
    cost of a tap — so it is computed once per distinct row mask and shared by every target, by
    regression and classification, and by the shuffled-label controls.
    """

    def __init__(self, X: torch.Tensor, Xv: torch.Tensor):
        self.X, self.Xv = X, Xv
        self._groups: dict[bytes, _Group] = {}

    @property
    def features(self) -> int:
        return self.X.shape[1]

    def group(self, rows: torch.Tensor | None) -> _Group:
        key = b"all" if rows is None else rows.numpy().tobytes()
        g = self._groups.get(key)
        if g is None:
            Xr = self.X if rows is None else self.X[rows]
            mu = Xr.mean(0)
            G = Xr.T @ Xr
            G /= Xr.shape[0]
            G -= torch.outer(mu, mu)
            g = _Group(rows, G, mu, L1Quadratic(G))
            self._groups[key] = g
        return g


def _mask_groups(mask: torch.Tensor | None, T: int) -> list[tuple[torch.Tensor | None, list[int]]]:
    """Targets grouped by identical row masks: ``[(row_mask or None for all rows, [columns])]``."""
    if mask is None or bool(mask.all()):
        return [(None, list(range(T)))]
    groups: dict[bytes, tuple[torch.Tensor, list[int]]] = {}
    for t in range(T):
        key = mask[:, t].numpy().tobytes()
        groups.setdefault(key, (mask[:, t], []))[1].append(t)
    return [(None if bool(m.all()) else m, cols) for m, cols in groups.values()]


def _xt_dot(X: torch.Tensor, R: torch.Tensor) -> torch.Tensor:
    """``Xᵀ R`` for a tall row-major ``X`` and few columns in ``R``, computed as ``(Rᵀ X)ᵀ``: the same
    product, but BLAS streams ``X`` row by row (2× faster at 14,000 × 2,048 and 36 columns)."""
    return (R.T @ X).T


def _matmul_sparse(X: torch.Tensor, W: torch.Tensor) -> torch.Tensor:
    """``X @ W`` using only the rows of ``W`` that are not all zero (when they are few: gathering the
    columns of ``X`` costs more than the product saves beyond about a fifth of them)."""
    used = (W != 0).any(1)
    k = int(used.sum())
    if k == 0:
        return torch.zeros(X.shape[0], W.shape[1], dtype=X.dtype)
    if k > X.shape[1] // 5:
        return X @ W
    idx = used.nonzero().ravel()
    return X[:, idx] @ W[idx]


def _grid(lam_max: torch.Tensor, ratios) -> torch.Tensor:
    r = torch.tensor(ratios, dtype=lam_max.dtype)
    return r[:, None] * lam_max[None, :]


class _Tracker:
    """Best-so-far bookkeeping of a path: which targets still walk, and their state at the best λ."""

    def __init__(self, D: int, T: int, dtype, patience: int):
        self.state = ADMMState.zeros(D, T, dtype)
        self.b = torch.zeros(T, dtype=dtype)
        self.alpha = torch.zeros(T, dtype=dtype)
        self.score = torch.full((T,), -float("inf"), dtype=dtype)
        self.best_step = torch.zeros(T, dtype=torch.long)
        self.steps = torch.zeros(T, dtype=torch.long)
        self.patience = patience

    def update(self, k: int, cols: torch.Tensor, st: ADMMState, b: torch.Tensor, lam: torch.Tensor,
               score: torch.Tensor) -> torch.Tensor:
        """Record step ``k`` for the targets ``cols`` (local indices); return which of them keep walking."""
        better = score > self.score[cols] + 1e-6
        if bool(better.any()):
            sel = cols[better]
            self.state.put(sel, st.take(better.nonzero().ravel()))
            self.b[sel] = b[better]
            self.alpha[sel] = lam[better]
            self.score[sel] = score[better]
            self.best_step[sel] = k
        self.steps[cols] = k + 1
        return (k - self.best_step[cols]) < self.patience

    def moved(self) -> torch.Tensor:
        """Targets whose best λ is below λ_max (the others' best probe is zero; nothing to refine)."""
        return (self.best_step > 0).nonzero().ravel()


# -- the Lasso -------------------------------------------------------------------------------------------
def regression_path(design: Design, Y: torch.Tensor, mask: torch.Tensor | None, Yv: torch.Tensor,
                    mask_v: torch.Tensor | None, *, ratios=DEFAULT_RATIOS, patience: int = DEFAULT_PATIENCE, iters: int = 10,
                    refine_iters: int = 30, tol: float = 1e-4) -> PathFit:
    """L1 linear regression of every column of ``Y (n, T)`` on the design, λ chosen by validation R².

    ``mask``/``mask_v`` (bool, same shapes as ``Y``/``Yv``) mark the labelled rows; None means all.
    ``iters`` ADMM iterations per λ along the path (warm-started), ``refine_iters`` more at the
    chosen λ. Targets are standardised inside (so one grid of ratios suits all); ``alpha`` is
    reported in the target's own units (scikit-learn's α for the same problem).
    """
    Y, Yv = _columns(Y), _columns(Yv)
    D, T = design.features, Y.shape[1]
    out = PathFit.zeros(D, T, design.X.dtype)
    for rows, cols in _mask_groups(mask, T):
        g = design.group(rows)
        Xr = g.X(design)
        Yr = Y[:, cols] if rows is None else Y[rows][:, cols]
        ybar = Yr.mean(0)
        ysd = Yr.std(0, unbiased=False)
        ysd = torch.where(ysd > 0, ysd, torch.ones_like(ysd))
        C = _xt_dot(Xr, (Yr - ybar) / ysd) / Xr.shape[0]  # = Xcᵀ(y − ȳ)/(n·σ), since Σ(y − ȳ) = 0
        Xr = None  # free the group's copy before the next group (the closures above are done with it)
        grid = _grid(C.abs().amax(0).clamp_min(1e-12), ratios)
        Yvg = Yv[:, cols]
        mv = None if mask_v is None else mask_v[:, cols]

        def evaluate(sel: torch.Tensor, z: torch.Tensor):
            W = z * ysd[sel]
            b = ybar[sel] - g.mu @ W
            pred = _matmul_sparse(design.Xv, W) + b
            return W, b, r2_scores(Yvg[:, sel], pred, None if mv is None else mv[:, sel])

        n = len(cols)
        track = _Tracker(D, n, out.coef.dtype, patience)
        active = torch.arange(n)
        state = ADMMState.zeros(D, n, out.coef.dtype)
        for k in range(len(ratios)):
            lam = grid[k, active]
            if k == 0 and ratios[0] >= 1.0:
                st = state.take(active)  # λ_max: zero is the solution
            else:
                st = g.solver.solve(C[:, active], lam, state.take(active), iters=iters, tol=tol)
                state.put(active, st)
            _, b, score = evaluate(active, st.z)
            keep = track.update(k, active, st, b, lam, score)
            active = active[keep]
            if len(active) == 0:
                break
        W, b, score = evaluate(torch.arange(n), track.state.z)
        sel = track.moved()
        if len(sel):
            st = g.solver.solve(C[:, sel], track.alpha[sel], track.state.take(sel), iters=refine_iters, tol=tol / 10)
            W[:, sel], b[sel], score[sel] = evaluate(sel, st.z)
        out.put(cols, W, b, track.alpha * ysd, score, track.steps)
    return out


def _columns(Y: torch.Tensor) -> torch.Tensor:
    return Y[:, None] if Y.dim() == 1 else Y


# -- L1 logistic regression ------------------------------------------------------------------------------
def _intercept_newton(XW: torch.Tensor, y: torch.Tensor, b: torch.Tensor, steps: int = 3) -> torch.Tensor:
    for _ in range(steps):
        p = torch.sigmoid(XW + b)
        grad = (p - y).sum(0)
        hess = (p * (1 - p)).sum(0).clamp_min(1e-6)
        b = b - torch.clamp(grad / hess, -5.0, 5.0)
    return b


def _logloss(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean log-loss per column of logits ``z`` against 0/1 labels ``y``."""
    return (torch.nn.functional.softplus(z) - y * z).mean(0)


#: Curvature scale of the logistic steps: Böhning's bound 1/4 guarantees descent; a smaller scale (the
#: mean of p(1 − p), never below MIN_CURVATURE) takes longer steps where the fit is already confident,
#: and a step that raises the objective is undone and retried with 4× the scale.
BOHNING = 0.25
MIN_CURVATURE = 1e-3
MAX_RETRIES = 5  # 1e-3 · 4⁵ > 0.25
LINE_STEPS = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0)


def logistic_path(design: Design, Y: torch.Tensor, mask: torch.Tensor | None, Yv: torch.Tensor,
                  mask_v: torch.Tensor | None, *, ratios=DEFAULT_RATIOS, patience: int = DEFAULT_PATIENCE, outer: int = 2,
                  refine_outer: int = 6, iters: int = 10, tol: float = 1e-4) -> PathFit:
    """L1 logistic regression of every 0/1 column of ``Y`` on the design, λ chosen by validation balanced accuracy.

    Loss: the mean log-loss over labelled rows plus ``λ‖w‖₁`` (scikit-learn's ``C = 1/(n·λ)``).
    Each λ of the path takes ``outer`` proximal Newton-type steps with the Hessian approximated by a
    per-target multiple of the Gram matrix (warm-started: the path itself is the continuation), the
    chosen λ ``refine_outer`` more; each step is up to ``iters`` ADMM iterations.
    """
    Y, Yv = _columns(Y), _columns(Yv)
    D, T = design.features, Y.shape[1]
    out = PathFit.zeros(D, T, design.X.dtype, classification=True)
    for rows, cols in _mask_groups(mask, T):
        g = design.group(rows)
        Xr = g.X(design)
        Yr = Y[:, cols] if rows is None else Y[rows][:, cols]
        n, mu = Xr.shape[0], g.mu
        prev = Yr.mean(0).clamp(1e-6, 1 - 1e-6)
        # λ_max: the gradient at w = 0 with the intercept at its optimum (the prevalence).
        C0 = _xt_dot(Xr, Yr - prev) / n - torch.outer(mu, (Yr - prev).mean(0))
        grid = _grid(C0.abs().amax(0).clamp_min(1e-12), ratios)
        Yvg = Yv[:, cols]
        mv = None if mask_v is None else mask_v[:, cols]

        def forward(z: torch.Tensor) -> torch.Tensor:
            return _matmul_sparse(Xr, z) - mu @ z

        def newton_steps(sel: torch.Tensor, lam: torch.Tensor, st: ADMMState, b: torch.Tensor, count: int, tl: float):
            y = Yr[:, sel]
            z, ydual = st.z.clone(), st.y.clone()
            XW = forward(z)
            b = _intercept_newton(XW, y, b)
            obj = _logloss(XW + b, y) + lam * z.abs().sum(0)
            p = torch.sigmoid(XW + b)
            curv = (p * (1 - p)).mean(0).clamp(MIN_CURVATURE, BOHNING)

            def step(i) -> torch.Tensor:
                """One proximal Newton-type step for the columns ``i`` (an index or ``slice(None)``), written
                back into the state above; which of them were rejected."""
                yi, zi, XWi, bi, oi, ci, li, pi, di = (t[..., i] for t in (y, z, XW, b, obj, curv, lam, p, ydual))
                R = (pi - yi) / n
                grad = _xt_dot(Xr, R) - torch.outer(mu, R.sum(0))
                new = g.solver.solve(ci * (g.G @ zi) - grad, li, ADMMState(zi, di), scale=ci, iters=iters, tol=tl)
                # Extrapolating line search along d = z_new − z: X·d comes free from the forward pass, so
                # every step length costs only elementwise work. Separable concepts need long steps.
                Xd, d = forward(new.z) - XWi, new.z - zi
                best_obj, best_t, best_b = None, None, None
                for t in LINE_STEPS:
                    bt = _intercept_newton(XWi + t * Xd, yi, bi, steps=1)
                    ot = _logloss(XWi + t * Xd + bt, yi) + li * (zi + t * d).abs().sum(0)
                    if best_obj is None:
                        best_obj, best_t, best_b = ot, torch.full_like(ot, t), bt
                        continue
                    better = ot < best_obj
                    if not bool(better.any()):
                        break  # longer steps only get worse (the objective is convex along d)
                    best_obj = torch.where(better, ot, best_obj)
                    best_t = torch.where(better, torch.full_like(ot, t), best_t)
                    best_b = torch.where(better, bt, best_b)
                ok = (best_obj <= oi + 1e-7) | (ci >= BOHNING)
                tt = torch.where(ok, best_t, torch.zeros_like(best_t))
                XWi = XWi + tt * Xd
                bi = torch.where(ok, _intercept_newton(XWi, yi, best_b, steps=1), bi)
                pi = torch.sigmoid(XWi + bi)
                ci = torch.where(ok, torch.maximum((pi * (1 - pi)).mean(0), ci / 2), ci * 4).clamp(MIN_CURVATURE, BOHNING)
                vals = (zi + tt * d, torch.where(ok, new.y, di), XWi, bi, torch.where(ok, best_obj, oi), pi, ci)
                for full, v in zip((z, ydual, XW, b, obj, p, curv), vals):
                    full[..., i] = v
                return ~ok

            rejected = None
            for _ in range(count):
                rejected = step(slice(None))
            # Then retries for the targets whose last step was rejected, on those columns only (their
            # scale is 4× larger each time and reaches Böhning's bound, where a step is always
            # accepted, within MAX_RETRIES): a target whose first step overshoots (rare positives:
            # p(1−p) ≈ prevalence underestimates the curvature) must not stay at its warm start.
            for _ in range(MAX_RETRIES):
                if rejected is None or not bool(rejected.any()):
                    break
                i = rejected.nonzero().ravel()
                back = step(i)
                rejected = torch.zeros_like(rejected)
                rejected[i] = back
            return ADMMState(z, ydual), b

        def evaluate(sel: torch.Tensor, z: torch.Tensor, b: torch.Tensor):
            b_raw = b - mu @ z
            p = torch.sigmoid(_matmul_sparse(design.Xv, z) + b_raw)
            pred = (p > prev[sel]).to(z.dtype)
            return b_raw, balanced_accuracies(Yvg[:, sel], pred, None if mv is None else mv[:, sel])

        m = len(cols)
        track = _Tracker(D, m, out.coef.dtype, patience)
        active = torch.arange(m)
        state = ADMMState.zeros(D, m, out.coef.dtype)
        B = torch.log(prev / (1 - prev))
        for k in range(len(ratios)):
            lam = grid[k, active]
            if k == 0 and ratios[0] >= 1.0:
                st, b = state.take(active), B[active]
            else:
                st, b = newton_steps(active, lam, state.take(active), B[active], outer, tol)
                state.put(active, st)
                B[active] = b
            _, score = evaluate(active, st.z, b)
            keep = track.update(k, active, st, b, lam, score)
            active = active[keep]
            if len(active) == 0:
                break
        W = track.state.z.clone()
        b, score = evaluate(torch.arange(m), W, track.b)
        sel = track.moved()
        if len(sel):
            st, bb = newton_steps(sel, track.alpha[sel], track.state.take(sel), track.b[sel], refine_outer, tol / 10)
            W[:, sel] = st.z
            b[sel], score[sel] = evaluate(sel, st.z, bb)
        Xr = None  # free the group's copy before the next group (the closures above are done with it)
        out.put(cols, W, b, track.alpha, score, track.steps, prev)
    return out
