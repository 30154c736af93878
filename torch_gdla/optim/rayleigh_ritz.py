"""Block Rayleigh–Ritz with thick restarts: extreme eigenpairs of a symmetric operator.

An eigenproblem (``gdla.SymmetricEigen``, ``gdla.PCA``) describes itself as an
:class:`EigenForm`; :class:`RayleighRitz` then runs, one restart cycle per ``step()``, the
block Lanczos method with thick restarts (Wu & Simon's TRLan, the block form of what ARPACK's
implicit restarts compute):

* the basis V grows by blocks: the next block is the part of ``M @ (last block)`` orthogonal to
  V (orthogonalised twice, which is enough), so V spans a block Krylov space;
* Rayleigh–Ritz on V (the eigendecomposition of the small ``VᵀMV``) gives Ritz pairs; the
  ``kept`` best are kept — V and ``M V`` are rotated, no operator application — and the next
  block, orthogonal to the old V, continues the Krylov space from them;
* the problem's unknown is moved to the top k Ritz vectors (``form.move``): exactly orthonormal
  at every step, as the problem's parametrisation promises.

Blocks of ``block`` vectors (default 2) let an eigenvalue of multiplicity up to ``block`` be
found with its whole eigenspace (a single Krylov vector sees one direction of each eigenspace).
The step's progress does not depend on loss differences: the Ritz residuals fall to rounding
level (about eps·‖M‖), far below the √eps at which a minimiser of the problem's loss stalls.

``step()`` returns the problem's loss at the new point from the Ritz values (no extra
application), and ``residual_estimate()`` the largest Ritz residual ‖Mvᵢ − θᵢvᵢ‖ from the kept
``M V``; the engine confirms a tolerance they pass with the problem's own residual, computed
from the data, and calls :meth:`RayleighRitz.refresh` (a restart from the problem's point) if
they have drifted.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, Optional

import torch
from torch import Tensor
from torch.optim import Optimizer

from ..errors import ArgumentError
from ..validation import check_int, check_nonnegative_int, check_positive_int

Block = Callable[[Tensor], Tensor]


@dataclass
class EigenForm:
    """An eigenproblem in Rayleigh–Ritz terms; blocks have shape ``(*batch, n, b)``.

    Args:
        apply: ``V -> M V`` (M symmetric).
        k: the number of eigenpairs wanted.
        largest: the largest (True) or smallest (False) algebraic eigenvalues.
        point: the problem's current orthonormal vectors ``(*batch, n, k)``.
        move: ``(vectors (*batch, n, k), values (*batch, k)) ->`` None: make them the problem's
            point (they are orthonormal Ritz vectors).
        loss: Ritz values ``(*batch, k)`` -> the problem's loss at their Ritz vectors (float).
        scale: Ritz values ``(*batch, k)`` -> the residual's per-member denominators (‖M‖).
        beyond: ``(values (*batch,), residuals (*batch,))`` of the (k+1)-th Ritz pair, or None
            when none is kept: the problem reports how far the wanted eigenvalues are from the
            rest of the spectrum.
    """

    apply: Block
    k: int
    largest: bool
    point: Callable[[], Tensor]
    move: Callable[[Tensor, Tensor], None]
    loss: Callable[[Tensor], float]
    scale: Callable[[Tensor], Tensor]
    beyond: Optional[Callable[[Tensor, Tensor], None]] = None


def _project(V: Tensor, Z: Tensor) -> Tensor:
    return Z - V @ (V.mT @ Z)


class RayleighRitz(Optimizer):
    """Thick-restart block Lanczos on an :class:`EigenForm`, one restart cycle per ``step()``.

    Args:
        params: the problem's parameters (the unknown's generator; read through the form).
        form: the problem's :class:`EigenForm` (``problem.eigen_form()``).
        block: vectors per Krylov block (default min(k, 2)): the largest multiplicity found
            whole; a narrower block than an eigenvalue's multiplicity may miss copies of it.
            Blocks narrower than k start from ``block`` random mixes of the k start vectors.  Where one application of M costs the same for any number of vectors (a pass
            over data, as in PCA), a wider block takes fewer applications of M.
        guard: Ritz vectors kept beyond the k wanted at each restart (default: 3k, at least 2);
            they speed the convergence of the k-th pair and estimate the gap after it.
        basis: the basis size at which a cycle restarts: kept + 24 blocks, at most 120 vectors
            unless 4 blocks need more (memory: 2·basis vectors of length n).  Measured on a
            200 × 200 matrix and the 10⁴ 2-D Laplacian (``bench/eigen.py``), with the default block
            this takes 1.0–1.7× the applications of M that ``scipy.sparse.linalg.eigsh`` takes.
        seed: seeds the random directions that replace a block which is (numerically) inside
            the basis already (an invariant subspace found, or a basis that spans everything).

    When the basis would span most of the space anyway (n < kept + 2·block), the first step
    applies M to a complete orthonormal basis and the pairs are exact; later steps do nothing.
    """

    self_evaluating = True  # iterate()/step() return the loss at the new iterate; no closure is called
    tuning_free = True  # no learning rate to tune: a stall is not the step size's fault

    def __init__(self, params: Iterable[Any], form: EigenForm, block: Optional[int] = None,
                 guard: Optional[int] = None, basis: Optional[int] = None, seed: int = 0) -> None:
        super().__init__(params, defaults={})
        flat = [p for group in self.param_groups for p in group["params"]]
        if len(flat) != 1:
            raise ArgumentError("RayleighRitz optimizes exactly one tensor (the eigenvectors' generator); "
                                f"got {len(flat)}")
        self.param = flat[0]
        self.form = form
        k = form.k
        # Two vectors a block by default: a pair of equal eigenvalues (common: symmetric grids,
        # the 2-D Laplacian) is found whole, and the Krylov degree grows every 2 applications
        # where a block of k grows it every k (measured in bench/eigen.py: block k took
        # 1.9-2.4x eigsh's applications, block 2 1.0-1.7x; block 1 misses repeated pairs).
        self.block = check_positive_int(block, "block", allow_none=True) or min(k, 2)
        guard = max(2, 3 * k) if guard is None else check_nonnegative_int(guard, "guard")
        self.kept = k + guard
        # 24 blocks beyond the kept vectors (measured: 16 took 10 % more applications on the 2-D
        # Laplacian), but not beyond 120 vectors unless 4 blocks need more: V and M V hold
        # 2·basis vectors of length n.
        default = min(self.kept + 24 * self.block, max(self.kept + 4 * self.block, 120))
        self.basis = check_positive_int(basis, "basis", allow_none=True) or default
        if self.basis < self.kept + self.block:
            raise ArgumentError(f"basis must be at least kept + block = {self.kept + self.block} (k {k} + guard "
                                f"{guard} + block {self.block}); got {self.basis}")
        self.generator = torch.Generator().manual_seed(check_int(seed, "seed"))
        self.applications = 0  # operator applications (columns, batch members counted), as scipy counts matvecs

    @property
    def stats(self) -> dict[str, int]:
        return {"matvecs": self.applications}

    # -- pieces ---------------------------------------------------------------------------------------------
    def _apply(self, V: Tensor) -> Tensor:
        self.applications += V[..., 0, :].numel()
        return self.form.apply(V)

    def _random(self, like: Tensor) -> Tensor:
        draw = torch.randn(like.shape, generator=self.generator, dtype=torch.float64)
        return draw.to(dtype=like.dtype, device=like.device)

    def _orthonormal(self, V: Tensor, Z: Tensor) -> Tensor:
        """An orthonormal block spanning the part of Z orthogonal to V (classical Gram–Schmidt
        twice, then QR).  A column left with less than √eps of its length — Z (nearly) inside
        span(V), or dependent on the block's earlier columns — would be rounding noise with
        components along V: it is replaced by a random direction, orthogonalised the same way."""
        before = torch.linalg.vector_norm(Z, dim=-2)
        Z = _project(V, _project(V, Z))
        Q, R = torch.linalg.qr(Z)
        weak = R.diagonal(dim1=-2, dim2=-1).abs() <= torch.finfo(Z.dtype).eps ** 0.5 * before
        if bool(weak.any()):
            Z = torch.where(weak.unsqueeze(-2), self._random(Q), Q)
            Q, _ = torch.linalg.qr(_project(V, _project(V, Z)))
        return Q

    # -- the iteration ----------------------------------------------------------------------------------------
    # The state holds the basis V and M V in buffers of ``capacity`` columns (no copy as the basis
    # grows), their first ``size`` columns in use; H = VᵀMV; Z the next block, orthonormal and
    # orthogonal to V; the Ritz values and vectors (coefficients Y) of the last Rayleigh–Ritz step.
    @torch.no_grad()
    def refresh(self) -> None:
        """Restart from the problem's current point: ``M V`` anew (k applications) and the
        Krylov block that follows it."""
        start = self.form.point().detach()
        n, k, state = start.shape[-2], start.shape[-1], self.state[self.param]
        state.clear()
        exact = n < self.kept + 2 * self.block  # the basis may as well be the whole space: exact pairs
        capacity = n if exact else min(self.basis, n - self.block)  # a block short of n: the next block fits
        V = start.new_zeros(*start.shape[:-1], capacity)
        thin = not exact and self.block < k  # a Krylov space of fewer than k vectors: start from their mix
        first = start @ self._random(start.new_empty(*start.shape[:-2], k, self.block)) if thin else start
        V[..., :first.shape[-1]] = self._orthonormal(start[..., :0], first) if thin else start
        if exact:
            V[..., k:] = self._orthonormal(start, self._random(V[..., k:]))
        size = capacity if exact else first.shape[-1]
        AV = torch.zeros_like(V)
        AV[..., :size] = self._apply(V[..., :size])
        H = V.new_zeros(*V.shape[:-2], capacity, capacity)
        product = V[..., :size].mT @ AV[..., :size]
        H[..., :size, :size] = (product + product.mT) / 2
        state.update(V=V, AV=AV, H=H, size=size, exact=exact)
        if not exact:
            extra = self.block - k
            if thin:
                state["Z"] = self._orthonormal(V[..., :size], AV[..., :size])
                while state["size"] < k:  # Krylov vectors until the basis holds k
                    self._expand(state)
            else:
                first = AV[..., :k] if not extra else torch.cat([AV[..., :k], self._random(AV[..., :extra])], -1)
                state["Z"] = self._orthonormal(start, first)
        self._rayleigh_ritz(state)

    def iterate(self) -> float:
        """One block of the Krylov space (``block`` applications of M) and a Rayleigh–Ritz step
        (call under ``torch.no_grad()``); the problem's loss at the new point."""
        state = self.state[self.param]
        if "V" not in state:
            self.refresh()  # the first step starts from the problem's point (a warm start, if given)
        if state["exact"]:
            return self.loss()
        if state["size"] + self.block > state["V"].shape[-1]:
            self._restart(state)
        self._expand(state)
        self._rayleigh_ritz(state)
        return self.loss()

    def _expand(self, state: dict[str, Any]) -> None:
        """The next Krylov block joins the basis (``block`` applications of M)."""
        V, AV, H, Z, j = state["V"], state["AV"], state["H"], state["Z"], state["size"]
        b = self.block
        AZ = self._apply(Z)
        across = V[..., :j].mT @ AZ
        corner = Z.mT @ AZ
        H[..., :j, j:j + b] = across
        H[..., j:j + b, :j] = across.mT
        H[..., j:j + b, j:j + b] = (corner + corner.mT) / 2
        V[..., j:j + b], AV[..., j:j + b] = Z, AZ
        state["size"] = j = j + b
        state["Z"] = self._orthonormal(V[..., :j], AZ)  # the next block: M Z off the basis

    def _rayleigh_ritz(self, state: dict[str, Any]) -> None:
        """The Ritz pairs of the basis; the top k become the problem's point."""
        j, k = state["size"], self.form.k
        V, AV = state["V"][..., :j], state["AV"][..., :j]
        values, Y = torch.linalg.eigh(state["H"][..., :j, :j])
        if self.form.largest:
            values, Y = values.flip(-1), Y.flip(-1)
        wanted = Y[..., : k + 1] if self.form.beyond is not None and j > k else Y[..., :k]
        X, AX = V @ wanted, AV @ wanted
        residuals = torch.linalg.vector_norm(AX - X * values[..., : wanted.shape[-1]].unsqueeze(-2), dim=-2)
        state.update(values=values, Y=Y, residuals=residuals[..., :k])
        self.form.move(X[..., :k], values[..., :k])
        if wanted.shape[-1] > k:
            self.form.beyond(values[..., k], residuals[..., k])  # type: ignore[misc]

    def _restart(self, state: dict[str, Any]) -> None:
        """Thick restart: keep the ``kept`` best Ritz vectors (V and M V rotated, no
        application); the next block, orthogonal to the whole old basis, continues from them."""
        j, kept = state["size"], self.kept
        Y = state["Y"][..., :kept]
        V, AV, H = state["V"], state["AV"], state["H"]
        V[..., :kept], AV[..., :kept] = V[..., :j] @ Y, AV[..., :j] @ Y
        H.zero_()
        H[..., :kept, :kept] = torch.diag_embed(state["values"][..., :kept])
        state["size"] = kept

    @torch.no_grad()
    def step(self, closure: Optional[Callable[[], Tensor]] = None) -> Tensor:  # type: ignore[override]
        """One block and a Rayleigh–Ritz step; the loss at the new point (the closure is not used)."""
        return torch.as_tensor(self.iterate(), dtype=self.param.dtype)

    # -- what the engine reads (it calls these under torch.no_grad()) ---------------------------------------
    def loss(self) -> float:
        """The problem's loss at the current point, from the Ritz values (no application)."""
        state = self.state[self.param]
        if "values" not in state:
            self.refresh()
        return self.form.loss(state["values"][..., : self.form.k])

    def residual_estimate(self) -> float:
        """The problem's relative residual (worst pair, worst member), from the kept ``M V``."""
        state = self.state[self.param]
        if "values" not in state:
            self.refresh()
        k = self.form.k
        scale = self.form.scale(state["values"][..., :k])
        worst = state["residuals"].amax(dim=-1)
        relative = torch.where(scale > 0, worst / scale.clamp_min(torch.finfo(worst.dtype).tiny), worst)
        return float(relative.max())
