"""Solution-quality measures and their torchmetrics metric: values, caching, reduction, and
their path through the SolverModule into Result.metrics."""
import pytest
import torch
from torchmetrics.utilities.data import dim_zero_max

import torch_gdla as gdla
from torch_gdla.matrices import Random
from torch_gdla.metrics import WorstMember
from torch_gdla.problems.svd import svd_optimizer


def svd_problem() -> gdla.SVD:
    return gdla.SVD(Random([5, 4], seed=314).tensor().double())


def test_states_are_declared_for_distributed_reduction():
    metric = WorstMember()
    assert WorstMember.full_state_update is False
    assert metric._reductions["worst"] is dim_zero_max
    assert metric.compute().item() == 0.0  # nothing seen yet


def test_metrics_report_the_problem_values_for_the_worst_member():
    A = torch.stack([torch.eye(2, dtype=torch.float64), 2 * torch.eye(2, dtype=torch.float64)])
    problem = gdla.LinearSystem(A, torch.ones(2, 2, dtype=torch.float64))  # x = 0: residual 1 in both
    with torch.no_grad():
        problem.x.copy_(torch.tensor([[1.0, 1.0], [0.25, 0.25]]))  # member 0 exact, member 1 half-way
    measures = problem.measures(reference=True)
    metric = WorstMember()
    metric.update(measures["residual"]())
    assert metric.compute().item() == pytest.approx(0.5)
    error = WorstMember()
    error.update(measures["reference_error"]())
    assert error.compute().item() == pytest.approx(0.5)  # ‖x − x*‖/‖x*‖ = 0.25/0.5
    metric.reset()
    assert metric.compute().item() == 0.0


def test_reference_error_matches_a_direct_inverse_and_is_computed_once(monkeypatch):
    M = Random([4, 4], seed=314).tensor().double()
    problem = gdla.MatrixInverse(M)
    calls = []
    original = problem.reference
    monkeypatch.setattr(problem, "reference", lambda: calls.append(1) or original())
    metric = WorstMember()
    measure = problem.measures(reference=True)["reference_error"]
    for _ in range(3):
        metric.update(measure())
        value = metric.compute().item()
        metric.reset()
    inverse = torch.linalg.inv(M)
    expected = (torch.linalg.matrix_norm(problem.X.detach() - inverse) / torch.linalg.matrix_norm(inverse)).item()
    assert value == pytest.approx(expected, rel=1e-12)
    assert len(calls) == 1


def test_svd_metrics_values():
    svd = svd_problem()
    measures = svd.measures(reference=True)
    assert set(measures) == {"residual", "orthogonality", "reference_error"}
    assert set(svd.measures()) == {"residual", "orthogonality"}
    metrics = {name: WorstMember() for name in measures}
    for name, metric in metrics.items():
        metric.update(measures[name]())
    assert metrics["residual"].compute().item() == pytest.approx(svd.residual())
    assert metrics["orthogonality"].compute().item() < 1e-14  # the start is orthonormal already
    sigma = torch.linalg.svdvals(svd.M)
    expected = (torch.linalg.vector_norm(svd.solution.S - sigma) / torch.linalg.vector_norm(sigma)).item()
    assert metrics["reference_error"].compute().item() == pytest.approx(expected, rel=1e-12)
    assert expected > 1e-3  # the start is not the answer: the metric measures something


def test_penalty_svd_orthogonality_error():
    svd = gdla.SVD(Random([5, 4], seed=314).tensor(), method="penalty")
    metric = WorstMember()
    metric.update(svd.measures()["orthogonality"]())
    U, V = svd.U.detach(), svd.V.detach()
    expected = max(torch.linalg.matrix_norm(U.T @ U - torch.eye(4)).item(), torch.linalg.matrix_norm(V.T @ V - torch.eye(4)).item())
    assert metric.compute().item() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("make", [
    lambda: gdla.MatrixInverse(Random([4, 4], seed=314).tensor().double()),
    lambda: gdla.LinearSystem([[1.0, 3, 2, -1], [5, 2, 1, -2], [0, 1, 2, 4], [1, 1, -1, -3]], [9.0, 4, 24, -12]),
])
def test_inverse_and_linear_system_declare_residual_and_reference_error(make):
    problem = make()
    assert set(problem.measures()) == {"residual"}
    assert set(problem.measures(reference=True)) == {"residual", "reference_error"}


def test_solve_puts_metrics_in_the_result_and_its_summary():
    svd = svd_problem()
    result = gdla.solve(svd, svd_optimizer, reference_metrics=True)
    assert set(result.metrics) == {"orthogonality", "reference_error"}
    assert result.metrics["reference_error"] < 1e-12 and result.metrics["orthogonality"] < 1e-12
    summary = result.summary()
    assert "orthogonality:" in summary and "reference_error:" in summary
    plain = gdla.solve(gdla.LinearSystem([[2.0, 0.0], [0.0, 4.0]], [2.0, 4.0]), reference_metrics=True)
    assert plain.metrics["reference_error"] < 1e-6
