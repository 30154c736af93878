"""SVD's default optimizer (gdla.optim.BlockKrylov) and the top-k check, against torch.linalg / scipy."""
import numpy as np
import pytest
import scipy.sparse.linalg
import torch

import torch_gdla as gdla
from torch_gdla import matrices
from torch_gdla.engine import Criteria, Iteration
from torch_gdla.optim import BlockKrylov
from torch_gdla.optim.lanczos import largest_singular_value
from torch_gdla.problems.svd import svd_optimizer


def with_spectrum(m, n, sigma, seed=0):
    g = torch.Generator().manual_seed(seed)
    Q1, _ = torch.linalg.qr(torch.randn(m, m, generator=g, dtype=torch.float64))
    Q2, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64))
    k = min(m, n)
    return Q1[:, :k] @ torch.diag(torch.as_tensor(sigma, dtype=torch.float64)) @ Q2[:, :k].T


# The defects issue's small cases: clustered, repeated, κ ≈ 1, and the gallery's classics.
SMALL = {
    "kappa 1.06, 10x10": with_spectrum(10, 10, torch.linspace(1.06, 1.0, 10)),
    "repeated 2 and 1, 10x10": with_spectrum(10, 10, [2.0] * 5 + [1.0] * 5),
    "cluster 1 + 1e-6 i, 7x7": with_spectrum(7, 7, 1 + 1e-6 * torch.arange(7.0)),
    "identity 10": torch.eye(10, dtype=torch.float64),
    "Hilbert 10": matrices.Hilbert(10).tensor(),
    "Frank 8": matrices.Frank(8).tensor(),
    "Kahan 10": matrices.Kahan(10).tensor(),
    "Wilkinson 9": matrices.Wilkinson(9).tensor(),
    "Pascal 6": matrices.Pascal(6).tensor(),
}


def solve(problem, residual_tol=None, max_steps=100):
    iteration = Iteration(problem, problem.default_optimizer(), Criteria(residual_tol=residual_tol), max_steps=max_steps)
    iteration.run(max_steps)
    return iteration.finish()


@pytest.mark.parametrize("name", list(SMALL))
@pytest.mark.parametrize("dtype, tol, rank", [(torch.float64, 1e-12, None), (torch.float64, None, "half"),
                                              (torch.float32, None, None), (torch.float32, None, "half")])
def test_small_svds_finish_at_once(name, dtype, tol, rank):
    # Formerly: hundreds of L-BFGS steps and thousands of evaluations, some for minutes.
    M = SMALL[name].to(dtype)
    k = None if rank is None else min(M.shape) // 2
    result = solve(gdla.SVD(M, rank=k), residual_tol=tol)
    assert result.converged and result.steps <= 2, result
    sigma = torch.linalg.svdvals(M.double())[: k or min(M.shape)]
    # Mirsky: each singular value is within residual·‖M‖_F of the true one
    bound = max(result.residual, 4 * torch.finfo(dtype).eps) * float(torch.linalg.matrix_norm(M.double()))
    assert (result.solution.S.double() - sigma).abs().max().item() <= bound
    assert result.stats["cycles"] == result.steps


def test_a_saddle_start_is_escaped_by_the_default_and_not_claimed_by_gradients():
    M = with_spectrum(30, 20, torch.linspace(5.0, 1.0, 20), seed=3)
    U, S, Vh = torch.linalg.svd(M, full_matrices=False)
    saddle = [4, 7]  # exact singular triplets, not the top two: stationary, residual 0 before the top-k check

    def at_saddle(problem):
        with torch.no_grad():
            problem.U_base.copy_(U[:, saddle])
            problem.V_base.copy_(Vh[saddle].T)
        return problem

    problem = at_saddle(gdla.SVD(M, rank=2))
    assert problem.stationarity().item() < 1e-14
    gap = float((S[0] - S[7]) / torch.linalg.matrix_norm(M))  # σ₁ is missing, σ₈ is the smaller found
    assert 0.99 * gap <= problem.residual() <= gap * (1 + 1e-12)  # a lower bound (8 Lanczos steps)
    result = solve(problem)
    assert result.converged
    torch.testing.assert_close(result.solution.S, S[:2], rtol=1e-10, atol=0)
    # torch's L-BFGS from the exact saddle: zero gradient, so no move; the run is not converged
    problem = at_saddle(gdla.SVD(M, rank=2))
    iteration = Iteration(problem, svd_optimizer(problem.parameters()), Criteria(), max_steps=300)
    iteration.run(300)
    result = iteration.finish()
    assert not result.converged and result.residual > 0.1


def scipy_products(A, k):
    count = [0]

    def product(X):
        count[0] += X.shape[1] if X.ndim == 2 else 1
        return X

    operator = scipy.sparse.linalg.LinearOperator(
        A.shape, matvec=lambda x: A @ product(x), rmatvec=lambda y: A.T @ product(y),
        matmat=lambda X: A @ product(X), rmatmat=lambda Y: A.T @ product(Y), dtype=A.dtype)
    U, S, Vt = scipy.sparse.linalg.svds(operator, k=k, tol=1e-2, random_state=0)
    return count[0], S


@pytest.mark.parametrize("spectrum", ["uniform", "decaying"])
def test_operator_applications_within_five_times_svds(spectrum):
    # 200 × 100, top 5, residual 1e-8 (svds at tol=1e-2 already reaches it on both matrices).
    g = torch.Generator().manual_seed(0)
    M = (torch.rand(200, 100, generator=g, dtype=torch.float64) if spectrum == "uniform"
         else with_spectrum(200, 100, 0.9 ** torch.arange(100.0), seed=2))
    peer, S = scipy_products(M.numpy(), 5)
    result = solve(gdla.SVD(M, rank=5), residual_tol=1e-8)
    assert result.converged
    torch.testing.assert_close(result.solution.S, torch.linalg.svdvals(M)[:5], rtol=1e-9, atol=0)
    np.testing.assert_allclose(np.sort(S)[::-1], result.solution.S.numpy(), rtol=1e-9)
    applications = result.stats["matvecs"] + result.stats["rmatvecs"]
    assert applications <= 5 * peer  # measured: 324 vs 73 (uniform), 134 vs 47 (decaying)


def test_wide_batched_float32_and_rank_deficient():
    g = torch.Generator().manual_seed(5)
    wide = torch.randn(2, 6, 40, generator=g, dtype=torch.float64)  # transposed inside: Ritz vectors in R^6
    result = solve(gdla.SVD(wide, rank=3), residual_tol=1e-10)
    assert result.converged and result.solution.V.shape == (2, 40, 3)
    torch.testing.assert_close(result.solution.S, torch.linalg.svdvals(wide)[..., :3], rtol=1e-9, atol=0)
    result = solve(gdla.SVD(wide.float()))
    assert result.converged and result.solution.S.dtype == torch.float32
    torch.testing.assert_close(result.solution.S.double(), torch.linalg.svdvals(wide)[..., :6], rtol=1e-4, atol=0)
    low = torch.randn(30, 2, generator=g, dtype=torch.float64) @ torch.randn(2, 20, generator=g, dtype=torch.float64)
    problem = gdla.SVD(low, rank=3)
    result = solve(problem, residual_tol=1e-10)
    assert result.converged and result.solution.S[2].item() <= 1e-12 * float(torch.linalg.matrix_norm(low))
    # the optimizer's loss is the problem's (1 − Σ s²/‖M‖², closed form for Ritz triplets)
    assert result.loss == pytest.approx(float(problem.losses()), abs=1e-12)


def test_block_krylov_arguments():
    problem = gdla.SVD(torch.rand(8, 6, dtype=torch.float64), rank=2)
    with pytest.raises(ValueError, match="rank <= block <= basis <= min"):
        BlockKrylov(problem.parameters(), problem.subspace_form(), block=1)
    with pytest.raises(ValueError, match="rank <= block <= basis <= min"):
        BlockKrylov(problem.parameters(), problem.subspace_form(), block=4, basis=7)
    optimizer = BlockKrylov(problem.parameters(), problem.subspace_form(), block=3, basis=4)
    assert optimizer.self_evaluating and optimizer.stats == {"matvecs": 0, "rmatvecs": 0, "cycles": 0}


def test_residuals_follow_every_change_of_the_point():
    problem = gdla.SVD(torch.rand(6, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(1)), rank=2)
    first = problem.residual()
    assert problem.residual() == first  # measured twice: the same point
    optimizer = torch.optim.SGD(problem.parameters(), lr=0.1)
    problem().backward()
    optimizer.step()
    assert problem.residual() != first


@pytest.mark.parametrize("seed", range(4))
def test_lanczos_bound_is_a_lower_bound_that_finds_a_separated_top(seed):
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(40, 25, generator=g, dtype=torch.float64)
    A[:, 0] *= 10  # a separated top singular value
    start = torch.randn(25, 1, generator=g, dtype=torch.float64)
    top = float(torch.linalg.svdvals(A)[0])
    for steps in (1, 3, 8, 25):
        estimate = float(largest_singular_value(lambda x: A @ x, lambda y: A.T @ y, start, steps))
        assert estimate <= top * (1 + 1e-12)
    assert estimate == pytest.approx(top, rel=1e-8)
    # an operator of rank 2 breaks the Krylov space down after two steps; the bound stays one
    B = A[:, :2] @ torch.randn(2, 25, generator=g, dtype=torch.float64)
    estimate = float(largest_singular_value(lambda x: B @ x, lambda y: B.T @ y, start, 8))
    assert estimate == pytest.approx(float(torch.linalg.svdvals(B)[0]), rel=1e-10)


def test_small_masked_runs_end_with_a_status_quickly():
    # One L-BFGS iteration per step, so the stall rule judges iterations (formerly 20 per step:
    # minutes on some 10 × 10 masks); a rank-2 fit of a 7 × 7 with repeated singular values.
    M = with_spectrum(7, 7, [2.0] * 3 + [1.0] * 4, seed=7).float()
    mask = torch.rand(7, 7, generator=torch.Generator().manual_seed(1)) < 0.7
    problem = gdla.SVD(M, rank=2, mask=mask)
    iteration = Iteration(problem, problem.default_optimizer(), Criteria(), max_steps=3000)
    iteration.run(3000)
    result = iteration.finish()
    assert result.status is not gdla.Status.MAX_STEPS and result.steps < 3000, result
    assert result.evaluations <= 2 * result.steps


def test_a_resumed_run_continues_exactly():
    M = torch.randn(60, 40, generator=torch.Generator().manual_seed(8), dtype=torch.float64)

    def run(steps, saved=None):
        problem = gdla.SVD(M, rank=4)
        optimizer = problem.default_optimizer()
        if saved is not None:
            problem.load_state_dict(saved[0])
            optimizer.load_state_dict(saved[1])
        for _ in range(steps):
            optimizer.step()
        return problem, optimizer

    problem, optimizer = run(1)
    saved = ({k: v.clone() for k, v in problem.state_dict().items()}, optimizer.state_dict())
    straight, straight_optimizer = run(3)
    resumed, resumed_optimizer = run(2, saved)
    assert torch.equal(resumed.U_base, straight.U_base) and torch.equal(resumed.V_base, straight.V_base)
    assert resumed_optimizer.stats == straight_optimizer.stats


def test_half_precision_falls_back_to_a_gradient_method():
    # torch has no QR or SVD in float16/bfloat16: the default is the gradient method there, and
    # the top-k check runs in float32; the run ends with a status, not an exception.
    M = torch.rand(5, 4, generator=torch.Generator().manual_seed(0))
    for dtype in (torch.float16, torch.bfloat16):
        problem = gdla.SVD(M.to(dtype), rank=2)
        assert isinstance(problem.default_optimizer(), gdla.optim.LBFGS)
        assert problem.residuals().dtype == dtype
        result = solve(problem, max_steps=20)
        assert result.status is not None and result.solution.S.dtype == dtype
