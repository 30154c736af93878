"""A block Krylov–Rayleigh–Ritz method for the SVD, written to the torch.optim contract.

Gradient steps on the Stiefel manifold need many evaluations where singular values cluster
(the loss's curvature spans (σᵢ − σⱼ)² to (σᵢ + σⱼ)²).  The block method below searches,
in every step, the whole space spanned by the current vectors and the loss's gradient
directions (MᵀM applied to them, repeatedly: a block Krylov space, as LOBPCG and ARPACK do),
and picks the best point in it at once (Rayleigh–Ritz: the SVD of M restricted to it).

A step (one restart cycle), on the side of M of smaller dimension n' (Mᵀ when M is wide):

1. P = [V, P₁, …, P_q]: V the b = k + p current Ritz vectors (p extra ones make the top k
   converge at the rate set by σ_k/σ_{b+1}, and let a start at a non-top set of singular
   triplets escape: an exact saddle spans an invariant subspace that the k alone never leave);
   P_j an orthonormal basis of MᵀM P_{j−1} outside the earlier blocks (directions lying
   already in the space are replaced by seeded random ones), at most ``basis`` columns;
2. Rayleigh–Ritz: the thin SVD M P = Ũ Σ Wᵀ gives U = Ũ[:, :b], S = Σ[:b], V = P W[:, :b];
3. MᵀU is formed (it is the next cycle's first block and the residual of the Ritz triplets).

When the basis reaches the whole space (n' ≤ ``basis``, as for every matrix with n' ≤ 64),
step 2 is the dense SVD of M P with P orthogonal: the answer comes in one step.  The top k
triplets are written into the problem (``SubspaceForm.assign``), whose own residual decides
convergence: the step returns the problem's loss and ``residual_estimate()`` the Ritz
residuals, which the engine confirms from the data (``self_evaluating``, as ``Krylov``).  A
member whose Ritz residual stops falling reports 0, so that the engine judges its point from
the data and, if the truth is short of the tolerance, restarts the cycle (``refresh``) once
and then names the floor, rather than running to ``max_steps``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Optional

import torch
from torch import Tensor
from torch.optim import Optimizer

from ..errors import ArgumentError
from ..validation import check_nonnegative_int, check_positive_int

Block = Callable[[Tensor], Tensor]
# A Ritz residual that has not fallen below IMPROVEMENT × its best for STALE_CYCLES cycles is
# reported as 0 (see the module docstring).
IMPROVEMENT = 0.9
STALE_CYCLES = 3


@dataclass
class SubspaceForm:
    """A problem's SVD in subspace terms; blocks have shape ``(*batch, rows, columns)``.

    Args:
        apply: ``V -> M V`` (n -> m rows).
        apply_t: ``U -> Mᵀ U`` (m -> n rows).
        shape: (m, n).
        rank: k, the triplets wanted (the top k).
        norms: ‖M‖_F per member, the residual's denominator.
        factors: the problem's current orthonormal (U, V), (…, m, k) and (…, n, k).
        assign: writes orthonormal (U, V) into the problem (the top triplets first).
        seed: seeds the random directions.

    The problem's loss must be Σ ‖M − U diag(S) Vᵀ‖²_F / ‖M‖²_F over members with
    S = diag(UᵀMV) (``gdla.SVD``'s): for Ritz triplets it equals 1 − Σ sᵢ² / ‖M‖²_F, which the
    optimizer reports without a product with M.
    """

    apply: Block
    apply_t: Block
    shape: tuple[int, int]
    rank: int
    norms: Tensor
    factors: Callable[[], tuple[Tensor, Tensor]]
    assign: Callable[[Tensor, Tensor], None]
    seed: int = 0


def default_sizes(rank: int, small: int) -> tuple[int, int]:
    """(block, basis) for k wanted triplets on a side of dimension n': b = k + 2 and a basis of
    max(8b, 64) columns, both at most n'.  Chosen by measurement (bench/peers_svd_minimize.py,
    random and decaying spectra, k = 5 and 10): a smaller basis needs more restarts and more
    operator applications in all, a larger one (or more extra vectors) more applications in
    the cycle that converges a decaying spectrum at once."""
    block = min(small, rank + 2)
    return block, min(small, max(8 * block, 64))


class SmallSide:
    """M on the side of smaller dimension n' (Mᵀ for a wide M: the Ritz vectors then live in the
    smaller space), counting column applications of M and Mᵀ as scipy counts matvecs."""

    def __init__(self, form: SubspaceForm) -> None:
        self.form = form
        self.transposed = form.shape[0] < form.shape[1]
        self.matvecs = 0
        self.rmatvecs = 0

    def _count(self, block: Tensor, adjoint: bool) -> None:
        columns = block.shape[-1] * max(1, block[..., 0, 0].numel())
        if adjoint != self.transposed:
            self.rmatvecs += columns
        else:
            self.matvecs += columns

    def A(self, P: Tensor) -> Tensor:
        """Small side -> large side."""
        self._count(P, adjoint=False)
        return self.form.apply_t(P) if self.transposed else self.form.apply(P)

    def At(self, Y: Tensor) -> Tensor:
        """Large side -> small side."""
        self._count(Y, adjoint=True)
        return self.form.apply(Y) if self.transposed else self.form.apply_t(Y)

    def vectors(self) -> Tensor:
        """The problem's current k vectors on the small side."""
        U, V = self.form.factors()
        return U if self.transposed else V

    def assign(self, small: Tensor, large: Tensor) -> None:
        """Write k Ritz vectors of each side into the problem."""
        self.form.assign(*((small, large) if self.transposed else (large, small)))


def orthonormal_extension(P: Tensor, X: Tensor, random: Callable[[Tensor], Tensor], width: bool = False) -> Tensor:
    """Orthonormal columns orthogonal to P spanning X's part outside span(P).  A direction of X
    that lies in span(P) or in the span of X's earlier columns (a converged Ritz vector's, rank
    deficiency) is dropped — soft locking — or made a random one (``random(like)``) where the
    result must keep X's width; at least one column is kept (a random one if X has none outside P)."""
    floor = math.sqrt(torch.finfo(X.dtype).eps)
    Q = X
    for _ in range(3):
        scale = torch.linalg.vector_norm(X, dim=-2)
        for _ in range(2):  # twice is enough (Giraud, Langou & Rozložník) in floating point
            X = X - P @ (P.mT @ X)
        Q, R = torch.linalg.qr(X)
        weak = R.diagonal(dim1=-2, dim2=-1).abs() <= floor * scale
        if not bool(weak.any()):
            break
        # Weak in every member: drop the column (unless the width is kept); weak in some: random.
        everywhere = weak.reshape(-1, weak.shape[-1]).all(dim=0)
        keep = torch.ones_like(everywhere) if width else ~everywhere
        if not bool(keep.any()):
            keep[0] = True
        X = torch.where(weak.unsqueeze(-2), random(X), X)[..., keep]
    return Q


class BlockKrylov(Optimizer):
    """The block Krylov–Rayleigh–Ritz SVD (module docstring); one restart cycle per ``step()``.

    Args:
        params: the problem's parameters (unused by the method, which writes the factors
            through ``form.assign``; the optimizer's state is saved with them).
        form: the problem's :class:`SubspaceForm` (``SVD.subspace_form()``).
        block: b, Ritz vectors kept between cycles (≥ k); None: :func:`default_sizes`.
        basis: columns of the search space per cycle (≥ b); None: :func:`default_sizes`.
    """

    tuning_free = True  # no learning rate to tune: a stall is not the step size's fault

    self_evaluating = True  # step() returns the loss at its new point; the closure is not called

    def __init__(self, params: Iterable[Any], form: SubspaceForm, block: Optional[int] = None,
                 basis: Optional[int] = None) -> None:
        super().__init__(params, defaults={})
        small = min(form.shape)
        default_block, default_basis = default_sizes(form.rank, small)
        self.block = check_positive_int(block, "block", allow_none=True) or default_block
        self.basis = check_positive_int(basis, "basis", allow_none=True) or max(default_basis, self.block)
        if not form.rank <= self.block <= self.basis <= small:
            raise ArgumentError(f"need rank <= block <= basis <= min(m, n): got rank={form.rank}, block={self.block}, "
                                f"basis={self.basis}, min(m, n)={small}")
        check_nonnegative_int(form.seed, "seed")
        flat = [p for group in self.param_groups for p in group["params"]]
        if not flat:
            raise ArgumentError("BlockKrylov needs the problem's parameters (its state is kept with them)")
        self._key = flat[0]
        self.form, self.side = form, SmallSide(form)
        self.generator = torch.Generator().manual_seed(int(form.seed) + 1)
        self.cycles = 0

    @property
    def stats(self) -> dict[str, int]:
        return {"matvecs": self.side.matvecs, "rmatvecs": self.side.rmatvecs, "cycles": self.cycles}

    def state_dict(self) -> dict[str, Any]:
        """torch's, plus the counters and the random directions' generator (a resumed run
        continues exactly)."""
        state = super().state_dict()
        state["block_krylov"] = {"counts": [self.side.matvecs, self.side.rmatvecs, self.cycles],
                                 "generator": self.generator.get_state()}
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state_dict = dict(state_dict)
        extra = state_dict.pop("block_krylov", None)
        super().load_state_dict(state_dict)
        if extra is not None:
            self.side.matvecs, self.side.rmatvecs, self.cycles = extra["counts"]
            self.generator.set_state(extra["generator"])

    def _random(self, like: Tensor) -> Tensor:
        return torch.randn(like.shape, generator=self.generator, dtype=torch.float64).to(like)

    @torch.no_grad()
    def refresh(self) -> None:
        """Restart from the problem's current point: its k vectors plus fresh random ones."""
        V = self.side.vectors()
        extra = self.block - V.shape[-1]
        if extra:
            more = self._random(V.new_empty(*V.shape[:-1], extra))
            V = torch.cat([V, orthonormal_extension(V, more, self._random, width=True)], dim=-1)
        AV = self.side.A(V)
        state = self.state[self._key]
        state.update(V=V, AV=AV, X=self.side.At(AV))
        state["best"] = torch.full(V.shape[:-2], math.inf, dtype=torch.float64, device=V.device)
        state["stale"] = torch.zeros(V.shape[:-2], dtype=torch.long, device=V.device)

    @torch.no_grad()
    def step(self, closure: Optional[Callable[[], Tensor]] = None) -> Tensor:  # type: ignore[override]
        state, side = self.state[self._key], self.side
        if "V" not in state:
            self.refresh()
        V, X = state["V"], state["X"]
        # A cycle that did not converge, on a side at most twice the basis: the next cycle takes
        # the whole space (Rayleigh–Ritz is then exact), which costs less than two more cycles.
        small = min(self.form.shape)
        basis = small if self.cycles and 2 * self.basis >= small else self.basis
        blocks, images = [V], [state["AV"] if basis > V.shape[-1] else side.A(V)]
        columns = V.shape[-1]
        while columns < basis:
            Pj = orthonormal_extension(torch.cat(blocks, dim=-1), X[..., : basis - columns], self._random)
            blocks.append(Pj)
            images.append(side.A(Pj))
            columns += Pj.shape[-1]
            if columns < basis:
                X = side.At(images[-1])
        # Rayleigh–Ritz: the best b triplets in span(P).
        P, AP = torch.cat(blocks, dim=-1), torch.cat(images, dim=-1)
        Ut, S, Wh = torch.linalg.svd(AP, full_matrices=False)
        b, k = self.block, self.form.rank
        V, U, S = P @ Wh[..., :b, :].mT, Ut[..., :b], S[..., :b]
        AtU = side.At(U)
        # For Ritz triplets A V = U S; AᵀA V = (AᵀU) S starts the next cycle's Krylov blocks.
        state.update(V=V, U=U, S=S, AtU=AtU, AV=U * S.unsqueeze(-2), X=AtU * S.unsqueeze(-2))
        side.assign(V[..., :k], U[..., :k])
        self.cycles += 1
        self._track()
        # The loss at the new point, 1 − Σ sᵢ²/‖M‖² (see SubspaceForm); rounding can make it
        # slightly negative at an exact decomposition.
        captured = (S[..., :k].square().sum(dim=-1) / self.form.norms.square()).to(torch.float64)
        return (1 - captured).clamp_min(0).sum().to(S.dtype)

    def _ritz_residuals(self) -> Tensor:
        state, k = self.state[self._key], self.form.rank
        # A V − U S vanishes for Ritz triplets (to rounding); AᵀU − V S is the residual.
        right = torch.linalg.matrix_norm(state["AtU"][..., :k] - state["V"][..., :k] * state["S"][..., :k].unsqueeze(-2))
        return right / math.sqrt(2) / self.form.norms

    def _track(self) -> None:
        state = self.state[self._key]
        residual = self._ritz_residuals().to(torch.float64)
        better = residual < IMPROVEMENT * state["best"]
        state["best"] = torch.where(better, residual, torch.minimum(state["best"], residual))
        state["stale"] = torch.where(better, torch.zeros_like(state["stale"]), state["stale"] + 1)

    @torch.no_grad()
    def residual_estimate(self) -> float:
        """The problem's relative residual of the worst member from the Ritz triplets; 0 for a
        member whose residual has stopped falling (the engine then judges it from the data)."""
        state = self.state[self._key]
        if "V" not in state:
            self.refresh()
        if "AtU" not in state:  # no cycle yet: nothing is known about the residual
            return math.inf
        residual = self._ritz_residuals()
        return float(torch.where(state["stale"] >= STALE_CYCLES, torch.zeros_like(residual), residual).max())
