"""Krylov methods for problems whose loss is a linear least-squares or SPD energy form.

A quadratic problem can describe its loss as a :class:`LinearForm` (an operator, a right-hand
side, how the unknown reads as columns); :class:`Krylov` then runs the classical method on it,
written to the torch.optim contract:

* conjugate gradient (CG, Hestenes–Stiefel) for a symmetric positive definite operator: ONE
  operator application per iteration, as ``scipy.sparse.linalg.cg``;
* CGLS (CG on the normal equations, without forming AᵀA) otherwise: ONE ``A`` and ONE ``Aᵀ``
  application per iteration, as ``scipy.sparse.linalg.lsqr``.

Each column of the unknown (a right-hand side, a row of an inverse) and each batch member runs
its own recurrence.  The loss and the residual come from the recurrences, so ``step()`` needs no
closure (``self_evaluating``); the engine confirms any convergence they suggest with the
problem's own residual, computed from the data, and calls :meth:`Krylov.refresh` (residual
replacement) if the recurrences have drifted.  ``preconditioner`` applies M⁻¹ (preconditioned
CG; for CGLS a right preconditioner, which must be symmetric, e.g. a diagonal).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, Optional

import torch
from torch import Tensor
from torch.optim import Optimizer

from ..errors import ArgumentError, NotConvergedError

Block = Callable[[Tensor], Tensor]


@dataclass
class LinearForm:
    """A problem's loss in Krylov terms; blocks have shape ``(*batch, rows, k)``.

    Args:
        apply: ``P -> A P`` (weighted rows already applied for a weighted problem).
        apply_t: ``S -> Aᵀ S``.
        rhs: ``B``.
        columns: the unknown parameter -> its ``(*batch, n, k)`` column view (writes go through).
        spd: A is symmetric positive definite: CG; else CGLS on ``‖AX − B‖² + l2‖X‖²``.
        energy: the loss is ``scale·Σ(½xᵀAx − bᵀx)`` (SPD only); else ``scale·(‖AX − B‖² + l2‖X‖²)``.
        scale: the loss's factor.
        normal_residual: the problem's residual is ``‖Aᵀ(B − AX) − l2 X‖`` per member (least
            squares); else ``‖B − AX‖``.
        residual_norms: the residual's per-member denominators (0: absolute).
        l2: ridge damping (CGLS only).
        preconditioner: ``P -> M⁻¹ P`` or None.
        cgls_preconditioner: the preconditioner after a switch from CG to CGLS (an indefinite A).
    """

    apply: Block
    apply_t: Block
    rhs: Tensor
    columns: Callable[[Tensor], Tensor]
    spd: bool
    energy: bool
    scale: float
    normal_residual: bool
    residual_norms: Tensor
    l2: float = 0.0
    preconditioner: Optional[Block] = None
    cgls_preconditioner: Optional[Block] = None  # after a switch from CG (an indefinite A) to CGLS


def _dot(a: Tensor, b: Tensor) -> Tensor:
    """Per-column inner products (*batch, rows, k) -> (*batch, k), accumulated in float64: the
    squared norms of CG and CGLS span the square of the data's range, which under- or overflows
    float32 for a badly scaled problem (entries ~1e-9 give ‖Aᵀ A p‖² ~ 1e-36) long before the
    iterates do."""
    if a.dtype != torch.float64:
        a, b = a.double(), b.double()
    return (a * b).sum(dim=-2)


def _column(scalars: Tensor, like: Tensor) -> Tensor:
    """Per-column scalars (*batch, k) as a (*batch, 1, k) factor in ``like``'s dtype."""
    return scalars.unsqueeze(-2).to(like.dtype)


def _ratio(numerator: Tensor, denominator: Tensor) -> Tensor:
    """numerator/denominator where the denominator is positive, else 0 (a converged column)."""
    return torch.where(denominator > 0, numerator / denominator.clamp_min(torch.finfo(denominator.dtype).tiny),
                       torch.zeros_like(numerator))


def _vdot(a: Tensor, b: Tensor) -> float:
    """The inner product of two (n, 1) columns, as a Python float (accumulated in float64)."""
    if a.dtype != torch.float64:
        a, b = a.double(), b.double()
    # dot on the flattened columns (views): measured 3.7 µs against 4.6 µs for a 1×n·n×1 matmul at
    # n = 100, and 0.21 against 0.57 ms at n = 262 144, where the matmul takes a slow gemm path
    return float(torch.dot(a.reshape(-1), b.reshape(-1)))


def _fraction(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator > 0 else 0.0


class Krylov(Optimizer):
    """CG or CGLS on a :class:`LinearForm`, one iteration per ``step()``.

    Args:
        params: the problem's parameters (exactly one tensor: the unknown).
        form: the problem's :class:`LinearForm` (``problem.linear_form()``).
        on_indefinite: what to do when CG meets a direction of non-positive curvature (A is not
            positive definite): ``"raise"`` (the caller declared A SPD) or ``"cgls"`` (switch to
            CGLS from the current point: the default for a matrix found symmetric).

    Two kernels run the same recurrences: one on blocks of columns with per-column scalars as
    tensors (batched, and on a GPU without host synchronisation), and one for a single vector on
    the CPU with its scalars as Python floats — a fifth of the small tensor operations, which
    dominate the cost of a small system.
    """

    tuning_free = True  # no learning rate to tune: a stall is not the step size's fault

    self_evaluating = True  # iterate()/step() return the loss at the new iterate; no closure is called

    def __init__(self, params: Iterable[Any], form: LinearForm, on_indefinite: str = "raise") -> None:
        super().__init__(params, defaults={})
        flat = [p for group in self.param_groups for p in group["params"]]
        if len(flat) != 1:
            raise ArgumentError(f"Krylov optimizes exactly one tensor (the problem's unknown); got {len(flat)}")
        if on_indefinite not in ("raise", "cgls"):
            raise ArgumentError(f"on_indefinite must be 'raise' or 'cgls'; got {on_indefinite!r}")
        self.param = flat[0]
        self.form = form
        self.on_indefinite = on_indefinite
        self.method = "cg" if form.spd else "cgls"
        self.applications = 0  # A applications (columns), as scipy counts matvecs
        self.adjoint_applications = 0  # Aᵀ applications (columns)
        rhs = form.rhs
        self._vector = rhs.dim() == 2 and rhs.shape[-1] == 1 and rhs.device.type == "cpu"
        self._count = rhs[..., 0, :].numel()  # columns per application, batch members included

    # -- operator applications, counted -----------------------------------------------------------------
    def _A(self, P: Tensor) -> Tensor:
        self.applications += self._count
        return self.form.apply(P)

    def _At(self, S: Tensor) -> Tensor:
        self.adjoint_applications += self._count
        return self.form.apply_t(S)

    def _M(self, R: Tensor) -> Tensor:
        return R if self.form.preconditioner is None else self.form.preconditioner(R)

    def _inner(self, a: Tensor, b: Tensor) -> Any:
        return _vdot(a, b) if self._vector else _dot(a, b)

    @property
    def precision_hint(self) -> str:
        """What this method adds to a precision-floor verdict."""
        if self.method == "cg":
            return ""
        return ("the default method for a non-symmetric A (CGLS) works with the normal equations AᵀA, whose "
                "condition number is κ²: if A is symmetric positive definite, assume='spd' avoids that")

    @property
    def stats(self) -> dict[str, int]:
        return {"matvecs": self.applications, "rmatvecs": self.adjoint_applications}

    # -- recurrences --------------------------------------------------------------------------------------
    @torch.no_grad()
    def refresh(self) -> None:
        """Restart the recurrences from the true residual at the current point (residual
        replacement): costs one A application (and one Aᵀ for CGLS)."""
        X = self.form.columns(self.param)
        state = self.state[self.param]
        S = self.form.rhs - self._A(X) if bool(X.any()) else self.form.rhs.clone()
        if self.method == "cg":
            R = S
        else:
            R = self._At(S)
            if self.form.l2:
                R = R - self.form.l2 * X
        Z = self._M(R)
        rz = self._inner(R, Z)
        plain = self.form.preconditioner is None
        state.update(ss=rz if plain and self.method == "cg" else self._inner(S, S), rr=rz if plain else self._inner(R, R))
        if "floor" not in state:
            # A column whose rᵀz falls to rounding level — eps² of its value at x = 0, the scale of
            # the problem — has converged as far as the arithmetic allows; stepping it further
            # divides noise by noise (an inconsistent singular system would blow up), so its step
            # is zero from then on.
            at_zero = rz if not bool(X.any()) else self._rz_at_zero()
            state["floor"] = at_zero * torch.finfo(self.param.dtype).eps ** 2  # the data's eps, not float64's
        state.update(S=S, R=R, P=Z.clone(), rz=rz, indefinite=False if self._vector else
                     torch.zeros((), dtype=torch.bool, device=R.device), lanczos=[])
        if self.method == "cg" and self.form.energy:
            # the energy per column, −½xᵀ(b + r) with r = b − Ax; each step then lowers it by
            # exactly ½·α·rᵀz (an exact line search along p), so loss() needs no inner product
            state["energy"] = -0.5 * self._inner(X, self.form.rhs + S)

    def _rz_at_zero(self) -> Any:
        """rᵀM⁻¹r at x = 0: r = B (CG) or AᵀB (CGLS; one Aᵀ application)."""
        R = self.form.rhs if self.method == "cg" else self._At(self.form.rhs)
        return self._inner(R, self._M(R))

    @torch.no_grad()
    def step(self, closure: Optional[Callable[[], Tensor]] = None) -> Tensor:  # type: ignore[override]
        """One iteration; the loss at the new iterate (the closure is not used)."""
        return torch.as_tensor(self.iterate(), dtype=self.param.dtype)

    def iterate(self) -> float:
        """One iteration (call under ``torch.no_grad()``); the loss at the new iterate, from the
        recurrences.  What ``step`` does, without torch.optim's per-step hooks and profiler
        records — the engine calls this directly."""
        state = self.state[self.param]
        if "R" not in state:
            self.refresh()
        if self._vector:
            self._cg_vector(state) if self.method == "cg" else self._cgls_vector(state)
            converged = state["rz"] <= state["floor"]
        else:
            self._cg(state) if self.method == "cg" else self._cgls(state)
            converged = bool((state["rz"] <= state["floor"]).all())
        if not converged:
            state["settled"] = False
        elif not state.get("settled", False):
            # Every column's recurrence is at its rounding floor: restart once from the true
            # residual (residual replacement) — a start far from the solution leaves rounding of
            # its own size in the recurrences, which the true residual does not have.
            state["settled"] = True
            self.refresh()
        return self.loss()

    def _cg(self, state: dict[str, Any]) -> None:
        X, P, R, rz = self.form.columns(self.param), state["P"], state["R"], state["rz"]
        Q = self._A(P)
        curvature = _dot(P, Q)
        active = rz > state["floor"]
        state["indefinite"] = state["indefinite"] | (active & (curvature <= 0)).any()
        if self.param.device.type == "cpu" and bool(state["indefinite"]):
            return self._indefinite()
        stepped = torch.where(active, rz, torch.zeros_like(rz))
        alphas = _ratio(stepped, curvature)
        alpha = _column(alphas, P)
        if "energy" in state:
            state["energy"] = state["energy"] - 0.5 * alphas * stepped
        X.addcmul_(alpha, P)
        R.addcmul_(alpha, Q, value=-1)
        Z = self._M(R)
        rz_new = _dot(R, Z)
        P.mul_(_column(_ratio(rz_new, rz), P)).add_(Z)
        rr = rz_new if self.form.preconditioner is None else _dot(R, R)
        state.update(S=R, rz=rz_new, ss=rr, rr=rr)

    def _cg_vector(self, state: dict[str, Any]) -> None:
        X, P, R, rz = self.form.columns(self.param), state["P"], state["R"], state["rz"]
        if rz <= state["floor"]:
            return
        Q = self._A(P)
        curvature = _vdot(P, Q)
        if curvature <= 0:
            return self._indefinite()
        alpha = rz / curvature
        if "energy" in state:
            state["energy"] -= 0.5 * alpha * rz
        X.add_(P, alpha=alpha)
        R.add_(Q, alpha=-alpha)
        Z = self._M(R)
        rz_new = _vdot(R, Z)
        beta = _fraction(rz_new, rz)
        P.mul_(beta).add_(Z)
        _remember(state, alpha, beta)
        rr = rz_new if self.form.preconditioner is None else _vdot(R, R)
        state.update(S=R, rz=rz_new, ss=rr, rr=rr)

    def _cgls(self, state: dict[str, Any]) -> None:
        X, P, S, rz = self.form.columns(self.param), state["P"], state["S"], state["rz"]
        Q = self._A(P)
        denominator = _dot(Q, Q) + self.form.l2 * _dot(P, P) if self.form.l2 else _dot(Q, Q)
        alpha = _column(_ratio(torch.where(rz > state["floor"], rz, torch.zeros_like(rz)), denominator), P)
        X.addcmul_(alpha, P)
        S.addcmul_(alpha, Q, value=-1)
        R = self._At(S)
        if self.form.l2:
            R = R - self.form.l2 * X
        Z = self._M(R)
        rz_new = _dot(R, Z)
        P.mul_(_column(_ratio(rz_new, rz), P)).add_(Z)
        rr = rz_new if self.form.preconditioner is None else _dot(R, R)
        state.update(R=R, rz=rz_new, ss=_dot(S, S), rr=rr)

    def _cgls_vector(self, state: dict[str, Any]) -> None:
        X, P, S, rz = self.form.columns(self.param), state["P"], state["S"], state["rz"]
        if rz <= state["floor"]:
            return
        Q = self._A(P)
        denominator = _vdot(Q, Q) + (self.form.l2 * _vdot(P, P) if self.form.l2 else 0.0)
        alpha = _fraction(rz, denominator)
        X.add_(P, alpha=alpha)
        S.add_(Q, alpha=-alpha)
        R = self._At(S)
        if self.form.l2:
            R = R - self.form.l2 * X
        Z = self._M(R)
        rz_new = _vdot(R, Z)
        beta = _fraction(rz_new, rz)
        P.mul_(beta).add_(Z)
        _remember(state, alpha, beta)
        rr = rz_new if self.form.preconditioner is None else _vdot(R, R)
        state.update(R=R, rz=rz_new, ss=_vdot(S, S), rr=rr)

    def _indefinite(self) -> None:
        if self.on_indefinite == "raise":
            raise NotConvergedError(
                'the matrix is not positive definite: conjugate gradient met a direction p with pᵀAp <= 0. '
                'Drop assume="spd" (the default least-squares method needs no definiteness)')
        self.method = "cgls"  # a symmetric but indefinite matrix: CG on the normal equations instead
        self.form.preconditioner = self.form.cgls_preconditioner
        self.refresh()

    def condition_estimate(self) -> Optional[float]:
        """κ of the operator iterated on (A for CG, AᵀA + l2 for CGLS; preconditioned when a
        preconditioner is given), from the extreme eigenvalues of the Lanczos tridiagonal matrix
        that the CG coefficients define (the Ritz values; Golub & Van Loan §10.2).  A lower bound
        that sharpens with the steps: κ's smallest eigenvalue is found last.  Single-vector
        runs only (None otherwise, or before two steps)."""
        coefficients = self.state[self.param].get("lanczos", []) if self._vector else []
        return lanczos_condition(coefficients)

    def error_factor(self) -> Optional[float]:
        """F with ‖x − x*‖/‖x*‖ ≲ F · (the problem's relative residual): κ(A) for the residual
        ‖b − Ax‖, κ(A)² for the normal-equation residual — from :meth:`condition_estimate`."""
        kappa = self.condition_estimate()
        if kappa is None:
            return None
        kappa_a = kappa if self.method == "cg" else kappa ** 0.5  # CGLS iterates on AᵀA
        return kappa_a ** 2 if self.form.normal_residual else kappa_a

    # -- what the engine reads (it calls these under torch.no_grad()) ----------------------------------------
    def loss(self) -> float:
        """The problem's loss at the current iterate, from the recurrences (no application)."""
        form, state = self.form, self.state[self.param]
        if form.energy and self.method == "cg" and "energy" in state:  # kept by the steps
            value = _total(state["energy"])
        elif form.energy:  # ½xᵀAx − bᵀx = −½xᵀ(b + r) with r = b − Ax
            X = form.columns(self.param)
            value = -0.5 * _total(self._inner(X, form.rhs + state["S"]))
        else:  # ‖S‖² per column, kept by the step
            value = _total(state["ss"])
            if form.l2:
                X = form.columns(self.param)
                value += form.l2 * _total(self._inner(X, X))
        return form.scale * value

    def residual_estimate(self) -> float:
        """The problem's relative residual of the worst member, from the recurrences."""
        state = self.state[self.param]
        if not self._vector and bool(state.get("indefinite", False)):
            self._indefinite()
        if "R" not in state:
            self.refresh()
        squares = state["rr"] if self.form.normal_residual else state["ss"]
        denominators = self.form.residual_norms
        if self._vector:
            norm, scale = squares ** 0.5, float(denominators)
            return norm / scale if scale > 0 else norm
        norms = squares.sum(dim=-1).sqrt().to(self.param.dtype)  # columns of a member together
        relative = torch.where(denominators > 0, norms / denominators.clamp_min(torch.finfo(norms.dtype).tiny), norms)
        return float(relative.max())


# The Lanczos coefficients kept for the condition estimate: the first steps (the extreme Ritz
# values settle early), bounded so the estimate costs at most a small eigenvalue problem.
LANCZOS_STEPS = 300


def lanczos_condition(coefficients: list[tuple[float, float]]) -> Optional[float]:
    """λmax/λmin of the Lanczos tridiagonal matrix that CG's (α, β) coefficients define (the
    first LANCZOS_STEPS of them); None with fewer than two, or a non-positive λmin.  T is built
    as nested lists, one tensor construction: a few microseconds, where torch.diag and friends
    cost tens (this runs once per solve, also for 4×4 systems)."""
    coefficients = coefficients[:LANCZOS_STEPS]
    k = len(coefficients)
    if k < 2:
        return None
    diagonal = [1 / alpha for alpha, _ in coefficients]
    off = [beta ** 0.5 / alpha for alpha, beta in coefficients[:-1]]
    for i, (alpha, beta) in enumerate(coefficients[:-1]):
        diagonal[i + 1] += beta / alpha
    if k <= 32:
        T = [[0.0] * k for _ in range(k)]
        for i in range(k):
            T[i][i] = diagonal[i]
        for i, value in enumerate(off):
            T[i][i + 1] = T[i + 1][i] = value
        matrix = torch.tensor(T, dtype=torch.float64)
    else:  # a k² list costs more than three diagonal constructions
        d, o = torch.tensor(diagonal, dtype=torch.float64), torch.tensor(off, dtype=torch.float64)
        matrix = torch.diag(d) + torch.diag(o, 1) + torch.diag(o, -1)
    eigenvalues = torch.linalg.eigvalsh(matrix)
    values = eigenvalues.tolist()  # one read of the host, not two
    smallest, largest = values[0], values[-1]
    return largest / smallest if smallest > 0 else None


def _remember(state: dict[str, Any], alpha: float, beta: float) -> None:
    if alpha > 0 and len(state["lanczos"]) < LANCZOS_STEPS:
        state["lanczos"].append((alpha, beta))


def _total(value: Any) -> float:
    return value if isinstance(value, float) else float(value.sum())
