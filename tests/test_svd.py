"""SVD by gradient descent (the matrix-operations tutorial, part 3): the tutorial's recipe, its failures,
and the default orthogonal method checked against torch.linalg."""
import functools
from pathlib import Path

import pytest
import torch

import torch_gdla as gdla
from torch_gdla.cli import GdlaCLI
from torch_gdla.matrices import Random
from torch_gdla.parametrizations import orthonormal_map
from torch_gdla.problems.svd import normalise, svd_optimizer

CONFIGS = Path(__file__).resolve().parent.parent / "configs"

# The tutorial's five test matrices (M4 is the transpose of a 3x4 draw).
SEED_MATRICES = {
    "M1": Random([5, 4], seed=314),
    "M2": Random([4, 4], seed=315),
    "M3": Random([7, 4], seed=316),
    "M4": Random([3, 4], seed=317, transpose=True),
    "M5": Random([4, 3], seed=317),
}


def seed_matrix(name: str, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return SEED_MATRICES[name].tensor().to(dtype)


def seed_recipe(name: str, steps: int) -> tuple[gdla.SVD, gdla.Result]:
    svd = gdla.SVD(seed_matrix(name), method="penalty")
    result = gdla.solve(svd, functools.partial(torch.optim.SGD, lr=0.9, momentum=0.9), tol=0, max_steps=steps)
    assert result.steps == steps
    return svd, result


# -- the tutorial's recipe --------------------------------------------------------------------------
def test_penalty_start_is_the_seeds_draws():
    M = seed_matrix("M1")
    torch.manual_seed(314)
    U, diag_sqrt, V = torch.rand(5, 4), torch.rand(4), torch.rand(4, 4)
    svd = gdla.SVD(M, method="penalty")
    assert torch.equal(svd.U, U) and torch.equal(svd.diag_sqrt, diag_sqrt) and torch.equal(svd.V, V)
    mse = torch.nn.functional.mse_loss
    seed_loss = mse(U @ torch.diag(diag_sqrt ** 2) @ V.T, M) + mse(U.T @ U, torch.eye(4)) / 100 + mse(V @ V.T, torch.eye(4)) / 100
    assert svd().item() == pytest.approx(seed_loss.item(), rel=1e-6)


def test_seed_recipe_M1():
    # The first 3000 of the tutorial's 20 000 steps: the loss passes 1e-6 at step ~2000 and the
    # singular values have their 4 decimals long before the end.
    svd, result = seed_recipe("M1", 3000)
    first = int((result.history < 1e-6).nonzero()[0])
    assert abs(first - 2023) <= 20
    assert result.solution.S.tolist() == pytest.approx([2.3398, 0.6873, 0.2592, 0.1177], abs=5e-5)


def test_seed_recipe_M5_plateaus_with_a_zero_singular_value():
    # diag_sqrt's third entry is driven to 0, where its gradient 2·diag_sqrt·∂L/∂S vanishes:
    # the loss is stuck at σ₃²/(m n), the energy of the lost triplet.
    svd, result = seed_recipe("M5", 2000)
    sigma = torch.linalg.svdvals(seed_matrix("M5", torch.float64))
    assert result.loss == pytest.approx(0.00942, rel=5e-3)
    assert result.loss == pytest.approx(float(sigma[2] ** 2 / 12), rel=1e-3)
    assert result.history[1000:].min().item() == pytest.approx(result.loss, rel=1e-4)  # a plateau
    S = result.solution.S
    assert S[2].item() < 1e-6
    assert S[:2].tolist() == pytest.approx(sigma[:2].tolist(), abs=1e-4)
    assert not result.converged


@pytest.mark.slow
def test_seed_recipe_M3_stalls():
    # σ₃ = 0.612 and σ₄ = 0.554 are close: mixing their vectors barely changes the loss, and
    # the 1/100 penalty tolerates non-orthogonal columns, so SGD crawls along that valley.
    svd, result = seed_recipe("M3", 20_000)
    sigma = torch.linalg.svdvals(seed_matrix("M3", torch.float64))
    assert result.loss == pytest.approx(4.6e-6, rel=0.05)
    assert result.history[5000].item() > result.loss > 1e-6  # still creeping down, far above 0
    S = result.solution.S
    assert S[:2].tolist() == pytest.approx(sigma[:2].tolist(), abs=1e-4)
    assert (S[2:].double() - sigma[2:]).abs().min().item() > 1e-2  # wrong in the second decimal
    assert svd.orthogonality_errors().item() > 1e-2
    assert result.residual > 1e-2 and not result.converged


# -- the default method -----------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(SEED_MATRICES))
def test_orthogonal_method_float64(name):
    M = seed_matrix(name, torch.float64)
    svd = gdla.SVD(M)
    result = gdla.solve(svd, svd_optimizer)
    U, S, V = result.solution
    sigma = torch.linalg.svdvals(M)
    assert result.converged
    assert ((S - sigma).abs() / sigma).max().item() <= 1e-8
    eye = torch.eye(S.shape[0], dtype=M.dtype)
    assert torch.linalg.matrix_norm(U.T @ U - eye).item() <= 1e-10
    assert torch.linalg.matrix_norm(V.T @ V - eye).item() <= 1e-10
    torch.testing.assert_close(U @ torch.diag(S) @ V.T, M, rtol=0, atol=1e-7)
    assert result.evaluations <= 300
    # Distinct singular values: the canonical form equals torch.linalg.svd's, entry by entry.
    reference = svd.reference()
    torch.testing.assert_close(U, reference.U, rtol=0, atol=1e-6)
    torch.testing.assert_close(V, reference.V, rtol=0, atol=1e-6)


@pytest.mark.parametrize("name", list(SEED_MATRICES))
def test_default_solve_meets_the_evaluation_target(name):
    # gdla.solve with no optimizer must pick the problem's own optimizer (build_optimizer calls
    # problem.default_optimizer()): ≤ 300 evaluations to 1e-8 on every tutorial matrix.
    M = seed_matrix(name, torch.float64)
    result = gdla.solve(gdla.SVD(M), max_steps=300)  # bounds the run if the default is not picked
    sigma = torch.linalg.svdvals(M)
    assert result.converged and result.evaluations <= 300
    assert ((result.solution.S - sigma).abs() / sigma).max().item() <= 1e-8


def test_wide_matrix_and_float32():
    M = seed_matrix("M4").T.contiguous()  # 3 x 4
    result = gdla.solve(gdla.SVD(M), svd_optimizer)
    U, S, V = result.solution
    assert U.shape == (3, 3) and S.shape == (3,) and V.shape == (4, 3) and S.dtype == torch.float32
    assert result.converged  # float32 default: residual <= 1e-4
    sigma = torch.linalg.svdvals(M.double())
    assert ((S.double() - sigma).abs() / sigma).max().item() <= 1e-4


@pytest.mark.slow  # long: a 200×100 SVD
def test_truncated_svd_finds_the_top_triplets():
    generator = torch.Generator().manual_seed(0)
    Q1, _ = torch.linalg.qr(torch.randn(200, 100, generator=generator, dtype=torch.float64))
    Q2, _ = torch.linalg.qr(torch.randn(100, 100, generator=generator, dtype=torch.float64))
    sigma = 0.7 ** torch.arange(100, dtype=torch.float64)
    M = Q1 @ torch.diag(sigma) @ Q2.T
    svd = gdla.SVD(M, rank=3)
    result = gdla.solve(svd, svd_optimizer)
    U, S, V = result.solution
    assert result.converged and U.shape == (200, 3) and V.shape == (100, 3)
    reference = svd.reference()
    torch.testing.assert_close(S, reference.S, rtol=1e-8, atol=0)
    torch.testing.assert_close(U, reference.U, rtol=0, atol=1e-6)
    torch.testing.assert_close(V, reference.V, rtol=0, atol=1e-6)
    assert svd.orthogonality_errors().item() <= 1e-10


def test_truncated_residual_is_zero_at_any_singular_triplets():
    # The truncated stationarity measure is optimality, not the (nonzero) reconstruction error:
    # 0 at the top-k triplets, 0 at other triplets too (saddles, which the loss ranks higher).
    # The residual adds the top-k check, so only the top-k triplets are converged: at the saddle
    # it is (σ₁ − σ₄)/‖M‖_F, σ₁ being the largest singular value of the deflated matrix.
    M = seed_matrix("M3", torch.float64)
    U, S, Vh = torch.linalg.svd(M, full_matrices=False)
    svd = gdla.SVD(M, rank=2, method="penalty")
    losses = []
    for columns in ([0, 1], [2, 3]):
        with torch.no_grad():
            svd.U.copy_(U[:, columns]), svd.diag_sqrt.copy_(S[columns].sqrt()), svd.V.copy_(Vh[columns].T)
        assert svd.stationarity().item() < 1e-14
        assert float(svd.losses()) == pytest.approx(float(S[[c for c in range(4) if c not in columns]].square().sum() / 28))
        losses.append(float(svd()))
        if columns == [0, 1]:
            assert svd.residual() < 1e-14
        else:
            assert svd.residual() == pytest.approx(float((S[0] - S[3]) / torch.linalg.matrix_norm(M)), rel=1e-10)
    assert losses[0] < losses[1]
    with torch.no_grad():
        svd.V.mul_(-1)  # wrong signs: far from optimal
    assert svd.stationarity().item() > 0.1 and svd.residual() > 0.1


def test_batched_members_solved_independently():
    M = torch.stack([seed_matrix("M1", torch.float64), Random([5, 4], seed=3).tensor().double()])
    svd = gdla.SVD(M)
    result = gdla.solve(svd, svd_optimizer)
    assert result.converged and svd.residuals().shape == (2,)
    torch.testing.assert_close(result.solution.S, torch.linalg.svdvals(M), rtol=1e-8, atol=0)
    assert svd.losses().shape == (2,)


@pytest.mark.slow  # long: 300 SGD steps of the orthonormal SVD (matrix exponentials)
def test_plain_torch_optim_loop():
    svd = gdla.SVD(seed_matrix("M1", torch.float64))
    optimizer = torch.optim.SGD(svd.parameters(), lr=0.5, momentum=0.9)
    for _ in range(300):
        optimizer.zero_grad()
        loss = svd()
        loss.backward()
        optimizer.step()
    assert svd.residual() < 1e-4  # 1.7e-5 after 300 steps, 3.6e-8 after 500
    assert svd.orthogonality_errors().item() < 1e-12  # orthonormal after every SGD step


def test_canonical_form():
    U = torch.tensor([[0.6, -0.8], [-0.8, -0.6], [0.0, 0.0]])
    V = torch.eye(2)
    U2, S2, V2 = normalise(U, torch.tensor([-1.0, 3.0]), V)
    assert S2.tolist() == [3.0, 1.0]
    # S = 3 sorts first; S = -1 becomes 1 with its V column flipped; each U column's
    # largest-magnitude entry (-0.8 in both) is made positive.
    assert U2[:, 0].tolist() == pytest.approx([0.8, 0.6, 0.0])
    assert U2[:, 1].tolist() == pytest.approx([-0.6, 0.8, 0.0])
    reconstructed = U2 @ torch.diag(S2) @ V2.T
    torch.testing.assert_close(reconstructed, U @ torch.diag(torch.tensor([-1.0, 3.0])) @ V.T)


@pytest.mark.parametrize("m, k", [(10, 3), (7, 4), (20, 1), (5, 5)])
def test_orthonormal_map_low_rank_form_equals_the_full_exponential(m, k):
    generator = torch.Generator().manual_seed(m + k)
    base, _ = torch.linalg.qr(torch.randn(m, m, generator=generator, dtype=torch.float64))
    X = torch.randn(m, k, generator=generator, dtype=torch.float64)
    L = X[:k].tril(-1)
    A = torch.zeros(m, m, dtype=torch.float64)
    A[:k, :k], A[k:, :k], A[:k, k:] = L - L.T, X[k:], -X[k:].T
    Q = orthonormal_map(base, X)
    torch.testing.assert_close(Q, base @ torch.matrix_exp(A)[:, :k], rtol=0, atol=1e-12)
    torch.testing.assert_close(Q.T @ Q, torch.eye(k, dtype=torch.float64), rtol=0, atol=1e-12)


# -- arguments ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, message", [
    ({"rank": 5}, "rank must be an integer from 1 to min"),
    ({"rank": 0}, "rank must be an integer from 1 to min"),
    ({"rank": 2.0}, "rank must be an integer"),
    ({"method": "svd"}, "method must be one of 'orthogonal', 'penalty'"),
    ({"penalty": 0}, "penalty must be a finite number > 0"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        gdla.SVD(seed_matrix("M1"), **kwargs)


def test_bad_matrices():
    with pytest.raises(ValueError, match="M must be a matrix"):
        gdla.SVD(torch.ones(4))
    with pytest.raises(TypeError, match="M has dtype torch.int64"):
        gdla.SVD(torch.ones(3, 3, dtype=torch.int64))
    with pytest.raises(ValueError, match="M is zero"):
        gdla.SVD(torch.zeros(3, 3))


# -- CLI ---------------------------------------------------------------------------------------------
def run_cli(config: str, tmp_path, *extra: str):
    args = ["fit", "--config", str(CONFIGS / config), "--trainer.logger.init_args.save_dir", str(tmp_path),
            "--trainer.enable_progress_bar", "false", *extra]
    return GdlaCLI(args=args)


def test_svd_config(tmp_path, capsys):
    result = run_cli("svd.yaml", tmp_path).model.result
    sigma = torch.linalg.svdvals(seed_matrix("M1", torch.float64))
    assert result.converged
    torch.testing.assert_close(result.solution.S, sigma, rtol=1e-8, atol=0)
    out = capsys.readouterr().out
    for field in ("orthogonality:", "reference_error:", "U:", "S:", "V:"):
        assert field in out
    assert result.metrics["orthogonality"] < 1e-12 and result.metrics["reference_error"] < 1e-12
    logged = next(tmp_path.rglob("metrics.csv")).read_text().splitlines()[0].split(",")
    assert {"loss", "residual", "orthogonality", "reference_error"} <= set(logged)  # logged per block


def test_svd_seed_config(tmp_path):
    # The first 2100 of the config's 20 000 steps reach the tutorial's milestone.
    result = run_cli("svd_seed.yaml", tmp_path, "--trainer.max_steps", "2100").model.result
    assert abs(int((result.history < 1e-6).nonzero()[0]) - 2023) <= 20
    assert result.solution.S.tolist() == pytest.approx([2.3398, 0.6873, 0.2592, 0.1177], abs=5e-4)
