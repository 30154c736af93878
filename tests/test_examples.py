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
    figures = load("warm_start_inverse").main(train_steps=100, inner_steps=2, verbose=False)
    # measured: drift 0.52, warm max 5.1e-3, final 4.1e-4, cold median 0.43, stale 0.4
    assert figures["drift"] > 0.4  # the matrix really moved
    assert figures["warm_max_error"] < 1e-2 and figures["warm_final_error"] < 1e-3
    assert figures["cold_median_error"] > 0.2 and figures["stale_error"] > 0.2
    assert figures["inverse_error"] < 2e-3


@pytest.mark.slow
def test_warm_start_inverse_runs_as_a_script():
    out = subprocess.run([sys.executable, str(EXAMPLES / "warm_start_inverse.py"), "--train-steps", "20"],
                         capture_output=True, text=True, check=True).stdout
    assert "warm start, 2 CG steps per training step" in out and "cold start" in out
