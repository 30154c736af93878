"""PCA of streamed rows: variances and directions against the dense covariance's eigh, every kind
of row source, a process's share of the passes, float32 data, refused inputs, the shipped config."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from conformance import check_problem
from torch.utils.data import DataLoader, Dataset, TensorDataset

import torch_gdla as gdla
import torch_gdla.problems.pca as pca_module
from torch_gdla.engine import Criteria, Iteration
from torch_gdla.errors import ArgumentError
from torch_gdla.problems.eigen import sign_normalised


def rows(m: int = 3000, n: int = 40, seed: int = 7, dtype=np.float64) -> np.ndarray:
    """Gaussian rows with variances 9 · 0.8^i along random orthonormal directions, shifted by 2."""
    generator = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(generator.standard_normal((n, n)))
    scales = 3.0 * 0.9 ** np.arange(n)
    return ((generator.standard_normal((m, n)) * scales) @ Q.T + 2.0).astype(dtype)


def dense(X: np.ndarray, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The top-k variances and sign-normalised directions of the dense covariance (numpy, float64)."""
    values, vectors = np.linalg.eigh(np.cov(X.astype(np.float64).T))
    values, vectors = torch.from_numpy(values[::-1][:k].copy()), torch.from_numpy(vectors[:, ::-1][:, :k].copy())
    return values, sign_normalised(vectors)[0]


def run(problem: gdla.Problem, residual_tol: float = 1e-10, max_steps: int = 500) -> gdla.Result:
    iteration = Iteration(problem, problem.default_optimizer(), Criteria(residual_tol=residual_tol),
                          max_steps=max_steps)
    iteration.run(max_steps)
    return iteration.finish()


class SingleRows(Dataset):
    def __init__(self, X: np.ndarray) -> None:
        self.X = torch.from_numpy(X)

    def __len__(self) -> int:
        return len(self.X)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.X[i]


def test_variances_and_directions_of_a_npy_file_match_the_dense_covariance(tmp_path):
    X = rows()
    np.save(tmp_path / "rows.npy", X)
    problem = gdla.PCA(tmp_path / "rows.npy", k=5, batch_size=256)
    result = run(problem)
    assert result.converged and result.residual <= 1e-10
    variances, directions, mean = result.solution
    expected_values, expected_vectors = dense(X, 5)
    assert torch.allclose(variances, expected_values, rtol=1e-10, atol=0)
    assert torch.allclose(directions, expected_vectors, atol=1e-8)
    assert torch.allclose(mean, torch.from_numpy(X.mean(axis=0)), rtol=1e-12)
    assert (directions.mT @ directions - torch.eye(5, dtype=torch.float64)).abs().max() <= 1e-12
    assert float(problem.reference_errors(problem.reference())) <= 1e-10
    assert float(problem.measures()["unseparated"]()) == 0


@pytest.mark.parametrize("source", ["array", "tensor", "dataset of rows", "dataset of pairs", "dataloader"])
def test_every_row_source_gives_the_same_components(source):
    X = rows(1200, 24, seed=3)
    given = {
        "array": lambda: X,
        "tensor": lambda: torch.from_numpy(X),
        "dataset of rows": lambda: SingleRows(X),
        "dataset of pairs": lambda: TensorDataset(torch.from_numpy(X), torch.zeros(len(X))),  # targets ignored
        "dataloader": lambda: DataLoader(TensorDataset(torch.from_numpy(X)), batch_size=100),
    }[source]()
    result = run(gdla.PCA(given, k=3, batch_size=100))
    assert result.converged
    assert torch.allclose(result.solution.variances, dense(X, 3)[0], rtol=1e-10, atol=0)


def test_float32_rows_give_float32_components():
    X = rows(2000, 32, seed=5, dtype=np.float32)
    problem = gdla.PCA(X, k=4, batch_size=500)
    result = run(problem, residual_tol=1e-6)
    assert result.converged and result.solution.variances.dtype == torch.float32
    assert result.solution.directions.dtype == torch.float32
    # products of float32 rows with float32 vectors (sums in float64): ~20 eps of float32
    assert torch.allclose(result.solution.variances.double(), dense(X, 4)[0], rtol=1e-5, atol=0)


def test_the_passes_of_two_processes_add_up_to_the_whole(monkeypatch):
    """Under DDP each process passes over its own blocks and the sums are all-reduced: the shares
    of rank 0 and rank 1 of 2 must add up to the single-process product."""
    X = rows(1000, 12, seed=11)
    problem = gdla.PCA(X, k=2, batch_size=90)  # 12 blocks, the last one short
    V = torch.randn(12, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    whole = problem.M @ V
    shares = []
    for rank in (0, 1):
        monkeypatch.setattr(pca_module, "rank_and_world_size", lambda rank=rank: (rank, 2))
        shares.append(problem.M @ V)
    centred = torch.from_numpy(X - X.mean(axis=0))
    assert torch.allclose(whole, centred.mT @ (centred @ V) / 999, rtol=1e-12)
    assert torch.allclose(shares[0] + shares[1], whole, rtol=1e-12)
    assert not torch.allclose(shares[0], whole)


def test_warm_start_from_previous_directions_takes_fewer_passes():
    X = rows(2000, 80, seed=2)
    first = run(gdla.PCA(X, k=3, batch_size=500))
    moved = np.concatenate([X, rows(40, 80, seed=9)])  # a few more rows arrive
    cold = run(gdla.PCA(moved, k=3, batch_size=500))
    warm = run(gdla.PCA(moved, k=3, batch_size=500, init=first.solution.directions))
    assert cold.converged and warm.converged and warm.steps < cold.steps
    assert torch.allclose(warm.solution.variances, dense(moved, 3)[0], rtol=1e-10)


def test_inputs_refused_with_clear_errors():
    with pytest.raises(ArgumentError, match="k must be an integer from 1 to n = 4"):
        gdla.PCA(np.ones((10, 4)), k=5)
    with pytest.raises(ArgumentError, match="rows × features"):
        gdla.PCA(np.ones(10), k=1)
    with pytest.raises(ArgumentError, match="at least 2 rows"):
        gdla.PCA(np.ones((1, 4)), k=1).statistics()


def test_conforms():
    check_problem(lambda d: gdla.PCA(torch.from_numpy(rows(200, 10, seed=4)).to(d), k=2, batch_size=64))


def test_pca_config(tmp_path, capsys):
    from test_cli import CONFIGS, run_cli

    cli = run_cli("pca.yaml", tmp_path)
    result = cli.model.result
    X = np.load(CONFIGS / "data" / "pca_rows.npy")
    assert result.converged and result.residual <= 1e-10
    assert torch.allclose(result.solution.variances, dense(X, 3)[0], rtol=1e-10)
    out = capsys.readouterr().out
    assert "variances:" in out and "unseparated: 0" in out and "reference_error:" in out
