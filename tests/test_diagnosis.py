"""The diagnosis of a stalled run names the right cause: here, a loss whose minimum is not zero
(a Rayleigh quotient, like the Brockett cost of eigenvectors) resolves its residual only to
about √eps; a problem that declares that floor is told so, not told to change its optimizer."""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

import torch_gdla as gdla


class TopEigenvector(gdla.Problem):
    """The top eigenvector of a symmetric M by minimising the negative Rayleigh quotient."""

    def __init__(self, M: Tensor, declare_floor: bool) -> None:
        super().__init__()
        self.register_buffer("M", M)
        self.v = nn.Parameter(torch.randn(M.shape[0], generator=torch.Generator().manual_seed(0), dtype=M.dtype))
        self.declare_floor = declare_floor

    def forward(self) -> Tensor:
        return -(self.v @ self.M @ self.v) / (self.v @ self.v)

    @property
    def solution(self) -> Tensor:
        return self.v.detach() / self.v.detach().norm()

    @torch.no_grad()
    def residuals(self) -> Tensor:
        v = self.v / self.v.norm()
        return torch.linalg.vector_norm(self.M @ v - (v @ self.M @ v) * v) / torch.linalg.matrix_norm(self.M, ord=2)

    def residual_floor(self) -> float | None:
        # Near the minimum the loss changes like the residual squared: loss differences vanish
        # (below eps relative) once the residual is below √eps.
        return math.sqrt(torch.finfo(self.dtype).eps) if self.declare_floor else None


def _matrix() -> Tensor:
    Q, _ = torch.linalg.qr(torch.randn(30, 30, generator=torch.Generator().manual_seed(1), dtype=torch.float64))
    return (Q * torch.linspace(1, 3, 30, dtype=torch.float64)) @ Q.T


def _run(declare_floor: bool) -> gdla.Result:
    problem = TopEigenvector(_matrix(), declare_floor)
    iteration = gdla.Iteration(problem, problem.default_optimizer(), gdla.Criteria(residual_tol=1e-15), max_steps=5000)
    iteration.run(5000)
    return iteration.finish()


def test_a_declared_loss_floor_is_named_instead_of_blaming_the_optimizer():
    result = _run(declare_floor=True)
    assert result.status is gdla.Status.PRECISION and not result.converged
    assert "resolves its residual only to about 1.5e-08" in result.reason
    assert "optimizer" not in result.reason.split("(")[0] and "learning rate" not in result.reason
    assert result.steps < 5000  # found by the stall rule, not at max_steps
    assert 1e-10 < result.residual < 1.5e-7


def test_without_the_declaration_the_same_run_reads_as_a_stalled_optimizer():
    result = _run(declare_floor=False)
    assert result.status is gdla.Status.STALLED
    assert "ConjugateGradient (which has no learning rate to tune) made no progress; try another optimizer" in result.reason
