"""The torch-gdla command runs every shipped config and reproduces the tutorials' numbers."""
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from torch_gdla.fit_cli import GdlaCLI

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


# -- the torch-gdla command: its commands, help and Lightning-free start -------------------------

def test_top_level_help_lists_the_three_commands(capsys):
    from torch_gdla.cli import main

    main(["--help"])
    out = capsys.readouterr().out
    assert "{fit,plot,compare}" in out
    for command in ("fit", "plot", "compare"):
        assert f"\n  {command} " in out
    for gone in ("validate", "predict"):  # a solver has nothing to validate, test or predict
        assert gone not in out
    with pytest.raises(SystemExit) as exit_info:
        main(["validate", "--config", "x.yaml"])
    assert exit_info.value.code == 2
    assert "unknown command 'validate'; choose fit, plot or compare" in capsys.readouterr().err


def test_top_level_help_and_plot_do_not_import_lightning():
    # A fresh interpreter: in this one the fit tests have imported Lightning already.
    code = ("import sys\nfrom torch_gdla.cli import main\nmain(['--help'])\n"
            "lightning = ('pytorch_lightning', 'lightning', 'lightning_fabric')\n"
            "loaded = sorted(m for m in sys.modules if m.split('.')[0] in lightning)\n"
            "assert not loaded, loaded\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "torch-gdla fit --config" in out


def test_fit_help_describes_output_and_ckpt_path(capsys):
    from torch_gdla.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: torch-gdla fit ")
    assert "<function" not in out
    assert "write the solution to this file" in out and "resume from this checkpoint" in out
    assert "--weights_only" not in out


def test_a_failed_fit_gives_back_the_sigint_handler(tmp_path):
    import signal

    import pytorch_lightning as pl

    class Crash(pl.Callback):
        def on_train_batch_end(self, trainer, *args):
            raise RuntimeError("simulated crash")

    handler = signal.getsignal(signal.SIGINT)
    with pytest.raises(RuntimeError, match="simulated crash"):
        GdlaCLI(args=["fit", "--config", str(CONFIGS / "inverse_random.yaml"), "--trainer.logger", "false",
                      "--trainer.enable_checkpointing", "false", "--trainer.enable_progress_bar", "false",
                      "--trainer.default_root_dir", str(tmp_path)], trainer_defaults={"callbacks": [Crash()]})
    assert signal.getsignal(signal.SIGINT) is handler


def test_enable_checkpointing_false_means_no_checkpoint_callback(tmp_path):
    cli = GdlaCLI(args=["--config", str(CONFIGS / "linear_system.yaml"), "--trainer.logger", "false",
                        "--trainer.enable_checkpointing", "false", "--trainer.default_root_dir", str(tmp_path)], run=False)
    assert cli.trainer.checkpoint_callbacks == [] and cli.model.result is None  # built, not run
    cli = GdlaCLI(args=["--config", str(CONFIGS / "linear_system.yaml"), "--trainer.logger", "false",
                        "--checkpoint.every_n_train_steps", "7", "--trainer.default_root_dir", str(tmp_path)], run=False)
    assert [cb.every_n_epochs for cb in cli.trainer.checkpoint_callbacks] == [0]
    from torch_gdla.lightning.support import checkpoint_step_intervals

    assert checkpoint_step_intervals(cli.trainer) == [7]


def test_a_fixed_step_run_reads_as_the_success_it_is(tmp_path, capsys):
    # The tutorial's main job runs a fixed number of steps with no tolerance: it completes, says
    # what its residual measures, when the loss passed 1e-8 and 1e-12, and shows X @ M ≈ I.
    from torch_gdla.cli import main

    main(["fit", "--config", str(CONFIGS / "inverse_random.yaml"), "--trainer.max_steps", "1000",
          "--trainer.logger.init_args.save_dir", str(tmp_path), "--trainer.enable_progress_bar", "false"])
    out = capsys.readouterr().out
    assert "converged:   n/a (no tolerance was set)" in out
    assert "reason:      completed: ran the 1000 steps configured" in out
    assert "(‖XM − I‖/‖I‖; 0 is exact)" in out and "1e-08 at step 500, 1e-12 at step 786" in out
    check = out.split("check — X @ M:\n")[1]
    assert check.startswith("tensor([[ 1.0000,") and "1.0000]])" in check
    assert "False" not in out and "max_steps reached" not in out
