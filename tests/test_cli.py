"""The torch-gdla command runs every shipped config and reproduces the seeds' numbers."""
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from torch_gdla.cli import GdlaCLI

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


def run_cli(config: str, tmp_path, *extra: str):
    args = ["fit", "--config", str(CONFIGS / config), "--trainer.logger.init_args.save_dir", str(tmp_path),
            "--trainer.enable_progress_bar", "false", *extra]
    return GdlaCLI(args=args)


@pytest.mark.slow
def test_inverse_random_config(tmp_path, capsys):
    cli = run_cli("inverse_random.yaml", tmp_path)
    result = cli.model.result
    history = result.history
    assert result.steps == 10_000
    assert history[0].item() == pytest.approx(0.7897, abs=1e-4)
    assert abs(int((history < 1e-8).nonzero()[0]) - 499) <= 5
    assert abs(int((history < 1e-12).nonzero()[0]) - 783) <= 5
    M = cli.model.problem.M
    assert torch.allclose(result.solution @ M, torch.eye(4), atol=1e-4)
    out = capsys.readouterr().out
    for field in ("converged:", "reason:", "steps:", "loss:", "residual:", "solution:"):
        assert field in out


@pytest.mark.slow
def test_inverse_diagonal_config(tmp_path):
    history = run_cli("inverse_diagonal.yaml", tmp_path).model.result.history
    assert history[0].item() == pytest.approx(1.6650, abs=1e-4)
    assert abs(int((history < 1e-8).nonzero()[0]) - 166) <= 5
    assert abs(int((history < 1e-12).nonzero()[0]) - 253) <= 5


def test_linear_system_config(tmp_path):
    result = run_cli("linear_system.yaml", tmp_path).model.result
    assert result.steps == 1000
    assert torch.allclose(result.solution, torch.tensor([1.0, 2.0, 3.0, 4.0]), atol=5e-5)


@pytest.mark.slow
def test_console_script_print_config():
    out = subprocess.run([sys.executable, "-m", "torch_gdla", "fit", "--config", str(CONFIGS / "linear_system.yaml"),
                          "--print_config"], capture_output=True, text=True, check=True).stdout
    assert "class_path: torch_gdla.LinearSystem" in out and "max_steps: 1000" in out
