"""Matrix completion (issue 8): gdla.SVD(M, rank=k, mask=...) fits a rank-k model to the
observed entries only and recovers the hidden ones."""
from pathlib import Path

import pytest
import torch

import torch_gdla as gdla
from torch_gdla.cli import GdlaCLI
from torch_gdla.matrices import LowRank, RandomMask

CONFIGS = Path(__file__).resolve().parent.parent / "configs"

TRUTH = LowRank(100, 80, 3, seed=0).tensor()           # float64, exactly rank 3
OBSERVED = RandomMask([100, 80], 0.6, seed=1).tensor()  # ~40 % of the entries hidden


def hidden_error(solution, M, observed):
    U, S, V = solution
    X = (U * S.unsqueeze(-2)) @ V.mT
    hidden = ~observed.expand_as(M)
    return float((X - M)[hidden].norm() / M[hidden].norm())


def test_sources():
    assert TRUTH.dtype == torch.float64 and int(torch.linalg.matrix_rank(TRUTH)) == 3
    assert OBSERVED.dtype == torch.bool and 0.55 < OBSERVED.double().mean() < 0.65
    with pytest.raises(ValueError, match="fraction_observed"):
        RandomMask([3, 3], 0.0)
    with pytest.raises(ValueError, match="rank"):
        LowRank(3, 2, 3)


def test_rank3_completion_recovers_hidden_entries():
    # Hidden entries are NaN in the data: only observed entries are ever read.
    M = torch.where(OBSERVED, TRUTH, torch.nan)
    svd = gdla.SVD(M, rank=3, mask=OBSERVED)
    # The accuracy below is asked for: the default L-BFGS stops at the first residual check
    # under the tolerance (the former one ran 20 iterations per step, far past 1e-8).
    result = gdla.solve(svd, residual_tol=1e-12)
    assert result.converged and result.residual <= 1e-8
    assert result.evaluations < 400  # measured: 47 (170 with torch's L-BFGS)
    assert hidden_error(result.solution, TRUTH, OBSERVED) < 1e-10  # measured: 7.5e-13
    assert float(svd.observed_errors()) < 1e-10
    assert torch.allclose(result.solution.S, torch.linalg.svdvals(TRUTH)[:3], rtol=1e-10)
    U, _, V = result.solution
    assert float(svd.orthogonality_errors()) < 1e-12
    assert torch.allclose(U.mT @ U, torch.eye(3, dtype=U.dtype), atol=1e-12)
    with pytest.raises(NotImplementedError, match="no direct"):
        svd.reference()
    assert set(svd.measures(reference=True)) == {"residual", "orthogonality", "observed_error"}


def test_weights_equal_to_the_mask_give_the_same_answer():
    masked = gdla.solve(gdla.SVD(TRUTH, rank=3, mask=OBSERVED), residual_tol=1e-12)
    weighted = gdla.solve(gdla.SVD(TRUTH, rank=3, weights=OBSERVED.double()), residual_tol=1e-12)
    assert weighted.converged
    assert torch.allclose(weighted.solution.S, masked.solution.S, rtol=1e-10)
    assert hidden_error(weighted.solution, TRUTH, OBSERVED) < 1e-10


def test_noisy_data_converges_on_the_optimality_residual():
    # No rank-3 matrix fits noisy observations exactly: the loss stays ~1e-5, the residual
    # (relative gradient) still reaches residual_tol.
    noise = 0.01 * torch.randn(100, 80, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    svd = gdla.SVD(TRUTH + noise, rank=3, mask=OBSERVED)
    result = gdla.solve(svd)
    assert result.converged and result.residual <= 1e-8
    assert 1e-3 < float(svd.observed_errors()) < 1e-2
    assert hidden_error(result.solution, TRUTH, OBSERVED) < 1e-2  # measured: 2.3e-3


def test_batched_float32():
    M = torch.stack([TRUTH, LowRank(100, 80, 3, seed=7).tensor()]).float()
    svd = gdla.SVD(M, rank=3, mask=OBSERVED)  # one mask broadcast over the batch
    result = gdla.solve(svd)
    assert result.converged and svd.residuals().shape == (2,)
    assert hidden_error(result.solution, M, OBSERVED) < 1e-3


def test_errors():
    with pytest.raises(ValueError, match="mask needs rank=k"):
        gdla.SVD(TRUTH, mask=OBSERVED)
    with pytest.raises(ValueError, match="weights needs rank=k"):
        gdla.SVD(TRUTH, weights=OBSERVED.double())
    with pytest.raises(ValueError, match="mask must have M's shape"):
        gdla.SVD(TRUTH, rank=3, mask=OBSERVED[:, :10])
    with pytest.raises(ValueError, match="no entries"):
        gdla.SVD(TRUTH, rank=3, mask=torch.zeros(100, 80, dtype=torch.bool))
    with pytest.raises(ValueError, match="weights must be >= 0"):
        gdla.SVD(TRUTH, rank=3, weights=-OBSERVED.double())
    with pytest.raises(ValueError, match="bool or 0/1"):
        gdla.SVD(TRUTH, rank=3, mask=OBSERVED * 0.5)
    with pytest.raises(ValueError, match="observed positions"):
        gdla.SVD(torch.full((100, 80), torch.nan, dtype=torch.float64), rank=3, mask=OBSERVED)
    with pytest.raises(ValueError, match="method"):
        gdla.SVD(TRUTH, rank=3, mask=OBSERVED, method="penalty")


def test_matrix_completion_config(tmp_path):
    args = ["fit", "--config", str(CONFIGS / "matrix_completion.yaml"), "--trainer.logger.init_args.save_dir",
            str(tmp_path), "--trainer.enable_progress_bar", "false"]
    result = GdlaCLI(args=args).model.result
    assert result.converged
    M, observed = LowRank(60, 50, 3, seed=0).tensor(), RandomMask([60, 50], 0.6, seed=1).tensor()
    assert hidden_error(result.solution, M, observed) < 1e-10  # measured: 4e-16
