"""solve() and SolverModule: stopping rules, divergence, result contents, Lightning, quietness."""
import functools
import math
import subprocess
import sys

import pytest
import torch

import torch_gdla as gdla
from conftest import sgd


def test_result_fields(M1):
    result = gdla.solve(gdla.MatrixInverse(M1.double()))
    assert isinstance(result, gdla.Result)
    assert result.converged and result.status is gdla.Status.RESIDUAL_TOL
    assert result.residual <= 1e-8  # the documented float64 default
    assert result.history.dim() == 1 and len(result.history) == result.steps
    assert result.evaluations >= result.steps
    assert result.loss == pytest.approx(result.history.min().item())
    assert "converged:   True" in result.summary()


def test_default_tolerance_depends_on_dtype(M1):
    assert gdla.Criteria().for_problem(gdla.MatrixInverse(M1)).residual_tol == 1e-4
    assert gdla.Criteria().for_problem(gdla.MatrixInverse(M1.double())).residual_tol == 1e-8
    # any explicit tolerance replaces the default
    assert gdla.Criteria(tol=0).for_problem(gdla.MatrixInverse(M1.double())).residual_tol is None


def test_tol_zero_takes_every_step(M2):
    result = gdla.solve(gdla.MatrixInverse(M2), optimizer=sgd(0.9, 0.9), tol=0, max_steps=1234)
    assert result.steps == 1234 and not result.converged
    assert result.status is gdla.Status.COMPLETED  # what it was configured to do


def test_max_steps_reason_suggests_a_fix(M1):
    result = gdla.solve(gdla.MatrixInverse(M1), optimizer=sgd(0.1), tol=1e-12, max_steps=50)
    assert not result.converged and result.steps == 50
    assert result.reason.startswith("max_steps reached: increase max_steps")


def test_rtol_relative_change_every_window(M1):
    result = gdla.solve(gdla.MatrixInverse(M1), optimizer=sgd(0.01), rtol=1e-3, max_steps=10_000)
    assert result.converged and result.status is gdla.Status.RTOL
    h = result.history.tolist()
    t = result.steps - 1
    assert t % 10 == 0
    change = abs(h[t] - h[t - 10]) / max(h[t], h[t - 10])
    assert change < 1e-3
    # it did not fire at any earlier check
    for s in range(10, t, 10):
        assert abs(h[s] - h[s - 10]) / max(h[s], h[s - 10]) >= 1e-3


def test_residual_tol_without_loss_bound_is_checked_at_the_solution():
    A = torch.randn(30, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    b = torch.randn(30, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    ls = gdla.LinearSystem(A, b)
    result = gdla.solve(ls, optimizer=sgd(0.1, 0.9), residual_tol=1e-6, residual_every=5, max_steps=5000)
    assert result.converged and result.status is gdla.Status.RESIDUAL_TOL
    assert result.steps % 5 == 0
    assert ls.residual() <= 1e-6 and result.residual == pytest.approx(ls.residual())


def test_divergence_stops_at_once_and_keeps_best(M1):
    inv = gdla.MatrixInverse(M1)
    result = gdla.solve(inv, optimizer=sgd(50.0), tol=1e-12, max_steps=10_000)
    assert not result.converged and result.status is gdla.Status.DIVERGED
    assert result.reason.startswith("diverged: loss became")
    assert "lower the learning rate" in result.reason
    assert result.steps < 200  # at once, not after max_steps
    assert not math.isfinite(result.history[-1].item())
    assert torch.isfinite(result.solution).all()
    assert result.loss == pytest.approx(result.history[torch.isfinite(result.history)].min().item())
    assert inv().item() == pytest.approx(result.loss, rel=1e-5)


def test_lbfgs_closure_optimizer_counts_every_evaluation(M1):
    lbfgs = functools.partial(torch.optim.LBFGS, max_iter=5, line_search_fn="strong_wolfe")
    result = gdla.solve(gdla.MatrixInverse(M1.double()), optimizer=lbfgs, tol=1e-10, max_steps=100)
    assert result.converged
    assert result.evaluations > result.steps


def test_solve_prints_nothing(M1, capfd):
    gdla.solve(gdla.MatrixInverse(M1), max_steps=20)
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_solver_module_with_a_plain_trainer(M1):
    import pytorch_lightning as pl

    module = gdla.SolverModule(gdla.MatrixInverse(M1), optimizer=sgd(0.9, 0.9), criteria=gdla.Criteria(tol=1e-12),
                               steps_per_block=64)
    trainer = pl.Trainer(max_steps=10_000, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False)
    trainer.fit(module)
    result = module.result
    assert result.converged and abs(result.steps - 785) <= 5
    assert trainer.global_step == result.steps  # Lightning counts optimizer steps


def test_trainer_max_steps_is_never_overshot(M1):
    import pytorch_lightning as pl

    module = gdla.SolverModule(gdla.MatrixInverse(M1), optimizer=sgd(0.9, 0.9), criteria=gdla.Criteria(tol=0),
                               steps_per_block=100)
    trainer = pl.Trainer(max_steps=250, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False)
    trainer.fit(module)
    assert module.result.steps == 250 == trainer.global_step


def test_trainer_without_max_steps_is_refused(M1):
    import pytorch_lightning as pl

    module = gdla.SolverModule(gdla.MatrixInverse(M1), criteria=gdla.Criteria(tol=1e-6))
    trainer = pl.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    with pytest.raises(ValueError, match="max_steps"):
        trainer.fit(module)


def test_csv_logger_records_loss_by_optimizer_step(M1, tmp_path):
    from pytorch_lightning.loggers import CSVLogger

    gdla.solve(gdla.MatrixInverse(M1), optimizer=sgd(0.9, 0.9), tol=0, max_steps=300, steps_per_block=100,
               logger=CSVLogger(tmp_path, name="run"))
    lines = (tmp_path / "run" / "version_0" / "metrics.csv").read_text().splitlines()
    assert lines[0].split(",") == ["loss", "residual", "step"]
    assert [int(float(line.split(",")[2])) for line in lines[1:]] == [100, 200, 300]


@pytest.mark.slow  # a fresh interpreter (subprocess)
def test_import_is_lazy():
    code = ("import sys, torch_gdla; "
            "print('pytorch_lightning' in sys.modules, 'torchmetrics' in sys.modules, 'lightning' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False", "False"]
