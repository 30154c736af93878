"""The problem contract.

A problem is an ``nn.Module`` whose ``nn.Parameter``s are the unknown and whose ``forward()``
returns the scalar loss.  Given data (matrices, right-hand sides) are buffers, so
``.to(device/dtype)`` moves everything.  Anything that trains a module trains a problem: a
plain ``torch.optim`` loop, the engine (``gdla.Iteration``), ``gdla.solve`` or a Lightning
``Trainer``.

A new operation subclasses :class:`Problem` and implements three members — ``forward``,
``solution`` and ``residuals`` — and may override the optional hooks listed on the class, each
of which has a working default.  ``tests/conformance.py`` checks any problem against this
contract.
"""
from __future__ import annotations

import abc
from typing import Any, Optional

import torch
from torch import Tensor, nn

from ..errors import UnsupportedInputError
from .hooks import DiagnosisHooks, Measure, ReferenceHooks, ShardingHooks

__all__ = ["Problem", "Measure"]


class Problem(DiagnosisHooks, ReferenceHooks, ShardingHooks, nn.Module, metaclass=abc.ABCMeta):
    """Base class of all torch_gdla problems.

    Required:
      * ``forward() -> Tensor``: the scalar loss the optimizer minimises (``forward(batch)``
        for a data-driven problem);
      * ``solution``: the current estimate, detached (a tensor or a named tuple of tensors);
      * ``residuals() -> Tensor``: the solver-independent relative residual of every batch
        member (shape = ``batch_shape``; 0-d for an unbatched problem).  It decides
        convergence, so it must not trust the optimizer: compute it from the data.

    Optional, with defaults (override what applies; the diagnosis, reference and sharding
    hooks live in ``hooks.py``, grouped by who calls them):

    ======================  =========================================================================
    ``batch_shape``         leading dimensions that index independent members (default ``()``)
    ``losses()``            the loss of every member; ``forward()`` is their sum
    ``default_optimizer()`` the tuning-free optimizer used when none is given (conjugate gradient)
    ``residual_bound(l)``   an upper bound on ``residual()`` implied by a loss value ``l``, so the
                            ``residual_tol`` rule costs nothing per step (default: no bound)
    ``condition_number()``  the condition number limiting attainable accuracy, used only to
                            explain a stalled run (default: unknown)
    ``singular_advice``     a message when a (numerically) singular matrix makes the problem
                            unsolvable; None (default) when singularity is not fatal
    ``tol_advice``          why ``tol`` (a loss threshold) cannot apply (an energy loss of unknown
                            minimum): a run given ``tol`` is refused with it; None: tol applies
    ``residual_meaning``    what ``residual()`` measures, for a reader ("‖XM − I‖/‖I‖")
    ``check()``             (label, tensor) a reader can compare with the data, e.g. ("X @ M", X@M)
                            — shown by the CLI next to the solution; None (default): nothing
    ``error_estimate(r, m)`` an estimate of the solution's relative error given its residual ``r``
                            and the method ``m`` that found it (None: unknown)
    ``given_tensors()``     the given data (matrices, right-hand sides, masks) that identify the
                            problem, for the fingerprint a checkpoint carries (default: the
                            persistent buffers, less ``_``-prefixed caches and ``start_buffers``)
    ``residual_floor()``    the smallest residual the loss itself can resolve in its dtype, when
                            that is above eps·κ (e.g. √eps for a loss whose minimum is not zero),
                            so a stall there is named as the loss's floor (default: None)
    ``caveat()``            what a converged run must still say about its solution (e.g. eigenvalues
                            too close to determine their eigenvectors one by one): appended to a
                            converged run's reason (default: None)
    ``reference()``         the direct ``torch.linalg`` answer, for comparison
    ``reference_errors(r)`` per-member relative error of ``solution`` against ``r``
    ``measures(reference)`` solution-quality measures (name -> per-member tensor); the Lightning
                            side logs them as torchmetrics
    ``train_dataloader()``  the rows of a data-driven problem
    ``attach(solution)``    the solution attached to the autograd graph of given tensors that
                            require grad (implicit differentiation; default: detached)
    ``num_pieces``,         how the unknown splits into independent pieces for
    ``split(indices)``,     ``gdla.sharding`` (default: it does not)
    ``join(pieces)``
    ======================  =========================================================================

    Flags (class or instance attributes):
      * ``quadratic``: the loss is a quadratic function of the parameters (optimizers may take
        exact steps);
      * ``uses_data``: ``forward(batch)`` is the loss of one batch of rows from a DataLoader;
        one optimizer step is taken per batch;
      * ``stochastic``: the loss is a mini-batch estimate: the solution is the last iterate
        and no stall is inferred from the noise;
      * ``last_iterate``: return the last iterate instead of the lowest-loss point (proximal or
        extrapolated methods, whose trial points are not iterates).
    """

    quadratic: bool = False
    uses_data: bool = False
    stochastic: bool = False
    last_iterate: bool = False
    # Buffers that belong to the seeded start rather than to the given data (left out of given_tensors()).
    start_buffers: tuple[str, ...] = ()

    # -- required ---------------------------------------------------------------------------------
    @abc.abstractmethod
    def forward(self, *batch: Any) -> Tensor:
        """The scalar loss at the current parameters."""

    @property
    @abc.abstractmethod
    def solution(self) -> Any:
        """The current estimate, detached from the graph."""

    @abc.abstractmethod
    def residuals(self) -> Tensor:
        """The relative residual of every batch member (shape ``batch_shape``)."""

    # -- derived ----------------------------------------------------------------------------------
    @torch.no_grad()
    def residual(self) -> float:
        """Relative residual of the current estimate (the worst batch member)."""
        return float(self.residuals().max())

    @property
    def dtype(self) -> torch.dtype:
        """The dtype of the unknown (every computation follows it)."""
        return next(self.parameters()).dtype

    @property
    def device(self) -> torch.device:
        """The device of the unknown."""
        return next(self.parameters()).device

    # -- optional hooks -----------------------------------------------------------------------------
    @property
    def batch_shape(self) -> torch.Size:
        """Leading dimensions indexing independent members; ``()`` for one problem."""
        return torch.Size()

    def losses(self) -> Tensor:
        """The loss of every batch member (batch shape); ``forward()`` is their sum.
        Unbatched problems return ``forward()`` itself."""
        return self.forward().detach()

    def default_optimizer(self) -> torch.optim.Optimizer:
        """What runs when no optimizer is given: conjugate gradient (exact steps for a quadratic
        loss, per batch member); a problem that knows a better tuning-free method overrides this."""
        from ..optim import ConjugateGradient

        batch_dims = len(self.batch_shape) if self.quadratic else 0
        return ConjugateGradient(self.parameters(), quadratic=self.quadratic, batch_dims=batch_dims)

    def residual_bound(self, loss: float) -> Optional[float]:
        """An upper bound on ``residual()`` given the loss value, or None if the loss does not bound it."""
        return None

    def given_tensors(self) -> dict[str, Tensor]:
        """The given data that identify this problem, by name: a checkpoint records their shapes,
        dtypes and a hash of their values, and a resume into a problem whose given tensors differ
        is refused.  Default: every persistent buffer except those whose name starts with ``_``
        (caches derived from the data) and those listed in ``start_buffers`` (seeded parts of the
        start, which a resume replaces along with the unknown).  A problem whose data are not
        buffers (rows read from files) may add what identifies them."""
        persistent = set(self.state_dict(keep_vars=True))
        return {name: buffer for name, buffer in self.named_buffers() if name in persistent
                and not name.rsplit(".", 1)[-1].startswith("_") and name not in self.start_buffers}

    def attach(self, solution: Any) -> Any:
        """``solution`` attached to the autograd graph of the given tensors that require grad
        (by implicit differentiation, as ``gdla.linalg`` does); the default leaves it detached
        (a problem whose answer gradients cannot reach)."""
        return solution

    def train_dataloader(self) -> Any:
        """The DataLoader of a data-driven problem (``uses_data``), unless a datamodule is given."""
        raise UnsupportedInputError(f"{type(self).__name__} reads no data; pass a datamodule to fit")

    def extra_repr(self) -> str:
        shapes = ", ".join(f"{name}={tuple(p.shape)}" for name, p in self.named_parameters())
        return f"unknowns: {shapes}, dtype={self.dtype}"
