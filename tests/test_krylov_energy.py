"""Conjugate gradient keeps the energy loss from its step lengths (no inner product per step):
it must equal the problem's own loss, computed from the data, at every step."""
import pytest
import torch

import torch_gdla as gdla

F64 = torch.float64


def _spd(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    Q, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=F64))
    scale = torch.logspace(0, 1, n, dtype=F64)
    return scale[:, None] * ((Q * torch.logspace(0, 2, n, dtype=F64)) @ Q.T) * scale[None, :]


@pytest.mark.parametrize("columns", [None, 3])  # one vector (float kernel) and a block (tensor kernel)
@pytest.mark.parametrize("preconditioner", [None, "jacobi"])
def test_the_tracked_energy_equals_the_problems_loss(columns, preconditioner):
    n = 30
    A = _spd(n, 0)
    shape = (n,) if columns is None else (n, columns)
    b = torch.randn(shape, generator=torch.Generator().manual_seed(1), dtype=F64)
    problem = gdla.LinearSystem(A, b, assume="spd", preconditioner=preconditioner)
    optimizer = problem.default_optimizer()
    for _ in range(12):
        with torch.no_grad():
            tracked = optimizer.iterate()
            exact = float(problem())
        assert tracked == pytest.approx(exact, rel=1e-9, abs=1e-12 * abs(exact))
    expected = torch.linalg.solve(A, b)
    with torch.no_grad():  # and at convergence it is the minimum, −½bᵀA⁻¹b (per column, scaled as the loss is)
        for _ in range(200):
            optimizer.iterate()
        assert optimizer.loss() == pytest.approx(float(problem()), rel=1e-9)
    assert torch.allclose(next(problem.parameters()).reshape(shape),
                          expected, atol=1e-8 * float(expected.abs().max()))
