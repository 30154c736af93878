"""The problem contract.

A problem is an ``nn.Module`` whose ``nn.Parameter``s are the unknown and whose ``forward()``
returns the scalar loss.  Given data (matrices, right-hand sides) are buffers, so
``.to(device/dtype)`` moves everything.  Anything that trains a module trains a problem:
a plain ``torch.optim`` loop, ``gdla.solve`` or a Lightning ``Trainer``.

A new operation subclasses :class:`Problem` and implements ``forward``, ``solution`` and
``residual``; the optional hooks below let the solver stop sooner or report more.
"""
from __future__ import annotations

from typing import Any, Optional

import torch
from torch import Tensor, nn


class Problem(nn.Module):
    """Base class of all torch_gdla problems.

    Subclasses must implement:
      * ``forward() -> Tensor`` — the scalar loss the optimizer minimises;
      * ``solution`` — the current estimate, detached;
      * ``residuals() -> Tensor`` — the solver-independent relative residual of every batch
        member (shape = the batch shape; a 0-d tensor for an unbatched problem).

    Optional hooks:
      * ``residual_bound(loss)`` — an upper bound on ``residual()`` implied by a loss value,
        so stopping on ``residual_tol`` costs nothing per step;
      * ``quadratic`` — True when the loss is a quadratic function of the parameters
        (optimizers may then use an exact line search);
      * ``metrics()`` — torchmetrics that describe solution quality for this problem.
    """

    quadratic: bool = False
    # A data-driven problem's forward(batch) is the loss of one batch of rows from a DataLoader
    # (its own ``train_dataloader()`` or a datamodule's); one optimizer step is taken per batch.
    uses_data: bool = False
    # Stochastic losses (mini-batches): a low loss on one batch proves nothing, so the solution is
    # the last iterate rather than the best-loss point, and no stall is inferred from the noise.
    stochastic: bool = False
    # The solution is the last iterate instead of the best-loss point: for stochastic losses,
    # and for methods whose trial points are not iterates (proximal/extrapolated steps).
    last_iterate: bool = False

    @property
    def batch_shape(self) -> torch.Size:
        return torch.Size()

    @property
    def solution(self) -> Any:
        raise NotImplementedError

    def residuals(self) -> Tensor:
        raise NotImplementedError

    def losses(self) -> Tensor:
        """The loss of every batch member (batch shape); ``forward()`` is their sum.
        Unbatched problems return ``forward()`` itself."""
        return self.forward().detach()

    @torch.no_grad()
    def residual(self) -> float:
        """Relative residual of the current estimate (the worst batch member)."""
        return float(self.residuals().max())

    def default_optimizer(self) -> torch.optim.Optimizer:
        """What ``solve(problem)`` uses when no optimizer is given.  The base choice is conjugate
        gradient (exact steps for a quadratic loss, per batch member); a problem that knows a
        better tuning-free method overrides this."""
        from ..optim import ConjugateGradient

        batch_dims = len(self.batch_shape) if self.quadratic else 0
        return ConjugateGradient(self.parameters(), quadratic=self.quadratic, batch_dims=batch_dims)

    def train_dataloader(self) -> Any:
        """The DataLoader of a data-driven problem (``uses_data``), unless a datamodule is given."""
        raise NotImplementedError(f"{type(self).__name__} reads no data; pass a datamodule to fit")

    def residual_bound(self, loss: float) -> Optional[float]:
        """An upper bound on ``residual()`` given the loss value, or None if the loss does not bound it."""
        return None

    def condition_number(self) -> Optional[float]:
        """The 2-norm condition number that limits the attainable accuracy (worst member), or
        None when it does not apply.  Called only to explain a run that stalled."""
        return None

    singular_advice: str = "No exact solution exists; regularise the problem"

    @property
    def needs_nonsingular(self) -> bool:
        """True when a (numerically) singular matrix makes the problem unsolvable to tolerance."""
        return False

    def reference(self) -> Any:
        """The answer of a direct ``torch.linalg`` solver, for comparison (costs a direct solve)."""
        raise NotImplementedError(f"{type(self).__name__} has no direct reference solution")

    def metrics(self, reference: bool = False) -> dict[str, Any]:
        """torchmetrics.Metric instances (name -> metric) reporting this problem's solution quality.

        Each metric's ``update`` takes the problem.  ``reference=True`` adds metrics that compare
        with the direct ``torch.linalg`` answer (each computes it once).  Called only by the
        Lightning side, so torchmetrics is imported here lazily.
        """
        from ..metrics import RelativeResidual

        return {"residual": RelativeResidual()}

    @property
    def dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def extra_repr(self) -> str:
        shapes = ", ".join(f"{name}={tuple(p.shape)}" for name, p in self.named_parameters())
        return f"unknowns: {shapes}, dtype={self.dtype}"


def batched_mse(difference: Tensor, batch_dims: int, reduce_batch: bool = True) -> Tensor:
    """Mean of squares over each member's own entries; members are summed (not averaged) so
    each member's loss keeps its scale whatever the batch size."""
    member_dims = tuple(range(batch_dims, difference.dim()))
    per_member = difference.square().mean(dim=member_dims) if member_dims else difference.square()
    return per_member.sum() if reduce_batch else per_member


def seeded_uniform(shape: torch.Size, seed: int, like: Tensor) -> Tensor:
    """``torch.manual_seed(seed); torch.rand(shape)`` without touching the global RNG."""
    generator = torch.Generator().manual_seed(int(seed))
    return torch.rand(shape, generator=generator).to(dtype=like.dtype, device=like.device)
