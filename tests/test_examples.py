"""The examples/ scripts run and produce the figures the README quotes (small settings)."""
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def load(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_mlp_digits_readout_by_linear_system():
    pytest.importorskip("sklearn")
    figures = load("mlp_digits").main(epochs=2, verbose=False)
    # measured: 2 epochs -> MLP 0.91, readout 0.98 (10 epochs: 0.971 / 0.982)
    assert figures["mlp_accuracy"] >= 0.85
    assert figures["readout_converged"] and figures["readout_residual"] <= 1e-6
    assert figures["readout_accuracy"] >= 0.95
    assert figures["readout_accuracy"] >= figures["mlp_accuracy"] - 0.01


def test_warm_start_inverse_keeps_up_with_a_drifting_matrix():
    figures = load("warm_start_inverse").main(["--train-steps", "100", "--inner-steps", "2"], verbose=False)
    # measured: drift 0.52, warm max 4.4e-3, final 3.7e-4, cold median 0.38, stale 0.52, inverse 5.7e-4;
    # to the default tolerance from the chain's X: warm 5.35 steps per training step, cold 7.72 (300 steps: 2.66, 7.91)
    assert figures["drift"] > 0.4  # the matrix really moved
    assert figures["warm_max_error"] < 1e-2 and figures["warm_final_error"] < 1e-3
    assert figures["cold_median_error"] > 0.2 and figures["stale_error"] > 0.2
    assert figures["warm_max_error"] <= figures["cold_median_error"] / 3
    assert figures["inverse_error"] < 2e-3
    assert figures["warm_mean_steps"] <= 2  # inv_ex(max_steps=2) never takes more
    assert figures["warm_steps_to_tol"] < 0.8 * figures["cold_steps_to_tol"]


def test_readout_layer_trains_through_the_solve():
    pytest.importorskip("sklearn")
    figures = load("readout_layer").main(["--epochs", "5"], verbose=False)
    # measured (seed 0): gradient 1.8e-12 from torch.linalg.solve's; accuracy 0.802 -> 0.967;
    # held-out loss 0.49 -> 0.26 (seeds 1, 2: 0.809 -> 0.944, 0.778 -> 0.936)
    assert figures["grad_difference"] <= 1e-6
    assert figures["accuracy_after"] >= figures["accuracy_before"] + 0.08 and figures["accuracy_after"] >= 0.92
    assert figures["last_loss"] < 0.7 * figures["first_loss"]


def test_readout_layer_lstsq_gradient_matches_torch():
    pytest.importorskip("sklearn")
    figures = load("readout_layer").main(["--solver", "lstsq", "--epochs", "1"], verbose=False)
    # measured: 1.6e-8 from torch.linalg.lstsq's (four adjoint least-squares solves at residual 1e-10)
    assert figures["grad_difference"] <= 1e-6
    assert figures["last_loss"] < figures["first_loss"] + 1 and figures["steps"] == 5


@pytest.mark.parametrize("via", ["minimize", "solve"])
def test_bilevel_ridge_finds_the_grid_search_lambda(via):
    figures = load("bilevel_ridge").main(["--via", via], verbose=False)
    # measured: hypergradient 3.2e-10 (minimize) / 8.1e-15 (solve) from torch.linalg's; tuned λ 30.7, validation
    # loss 1.9421 against the grid's 30.2, 1.9416 (from 4.17 at λ = 1); inner iterations 80 -> 30 (44 -> 24) warm
    assert figures["hypergradient_difference"] <= 1e-6
    assert figures["tuned_loss"] <= 1.03 * figures["grid_loss"]
    assert figures["tuned_loss"] < 0.6 * figures["start_loss"]
    assert 0.5 < figures["tuned_lambda"] / figures["grid_lambda"] < 2
    assert figures["last_inner_steps"] < figures["first_inner_steps"]  # the warm start pays


def _script(name, *args):
    return subprocess.run([sys.executable, str(EXAMPLES / f"{name}.py"), *args], capture_output=True, text=True,
                          check=True).stdout


@pytest.mark.slow
def test_warm_start_inverse_runs_as_a_script():
    out = _script("warm_start_inverse", "--train-steps", "20")
    assert "warm start, ≤ 2 CG steps per training step" in out and "cold start" in out
    assert "to the default tolerance: warm" in out


@pytest.mark.slow
def test_readout_layer_runs_as_a_script():
    pytest.importorskip("sklearn")
    out = _script("readout_layer", "--epochs", "1")
    assert "relative difference" in out and "test accuracy of the solved readout: untrained" in out


@pytest.mark.slow
def test_bilevel_ridge_runs_as_a_script():
    out = _script("bilevel_ridge", "--steps", "5", "--via", "solve")
    assert "hypergradient" in out and "grid search, 201 λ" in out
