"""What a result claims holds at the point it returns: estimated losses (mini-batches, proximal
trial points, Krylov recurrences) are confirmed from the data; a run whose members do not all
meet the tolerance is not converged and names them; a fixed-step run reads as what it is."""
from __future__ import annotations

import functools

import torch

import torch_gdla as gdla


def test_a_mini_batch_below_tol_is_not_convergence_until_all_the_data_agree():
    g = torch.Generator().manual_seed(0)
    A = torch.randn(200, 3, generator=g, dtype=torch.float64)
    b = A @ torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64) + 0.1 * torch.randn(200, generator=g, dtype=torch.float64)
    A[:10], b[:10] = 0, 0  # the first block is fitted exactly by the start x = 0
    problem = gdla.StreamedLeastSquares(A, b, batch_size=10, shuffle=False)
    assert float(problem.full_loss()) > 0.05  # ... while all the data are not
    result = gdla.solve(problem, functools.partial(torch.optim.SGD, lr=0.05), tol=0.05, max_steps=None, max_epochs=50)
    assert result.status is gdla.Status.TOL and result.steps > 1
    assert result.loss == float(problem.full_loss()) <= 0.05  # the loss reported is over all rows, at x


def test_lasso_reports_the_loss_at_the_returned_solution():
    g = torch.Generator().manual_seed(1)
    A, b = torch.randn(50, 8, generator=g, dtype=torch.float64), torch.randn(50, generator=g, dtype=torch.float64)
    problem = gdla.LinearSystem(A, b, l1=0.1)
    result = gdla.solve(problem)
    assert result.converged
    with torch.no_grad():
        assert result.loss == problem().item()


def test_a_batched_run_is_not_converged_while_a_member_is_not():
    # rtol stops on the summed loss; member 1 is singular and never meets residual_tol.
    M = torch.stack([torch.eye(3, dtype=torch.float64), torch.diag(torch.tensor([1.0, 1.0, 0.0], dtype=torch.float64))])
    result = gdla.solve(gdla.MatrixInverse(M), residual_tol=1e-10, max_steps=300)
    assert not result.converged
    assert result.member_converged.tolist() == [True, False]
    assert "batch members not converged: 1 of 2: 1" in result.reason


def test_a_fixed_step_run_reads_as_completed_with_its_milestones(M1):
    result = gdla.solve(gdla.MatrixInverse(M1), functools.partial(torch.optim.SGD, lr=0.9, momentum=0.9), tol=0,
                        max_steps=1000)
    assert result.status is gdla.Status.COMPLETED and not result.converged
    summary = result.summary()
    assert summary.startswith("converged:   n/a (no tolerance was set)")
    milestones = dict(result.milestones())
    assert milestones[1e-8] == int((result.history <= 1e-8).nonzero()[0]) + 1
    assert f"1e-08 at step {milestones[1e-8]}" in summary and f"1e-12 at step {milestones[1e-12]}" in summary
