"""Interruption and resume: a stopped run resumes from its checkpoint with optimizer state and
reaches the uninterrupted run's solution; Ctrl-C in solve() returns the best point so far."""
import functools
import os
import signal
from pathlib import Path

import pytest
import torch

import torch_gdla as gdla
from torch_gdla.cli import GdlaCLI

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


class CrashAfter:
    """A callback that kills the run after `steps` optimizer steps, like a machine going down."""

    def __new__(cls, steps):
        import pytorch_lightning as pl

        class _Crash(pl.Callback):
            def on_train_batch_end(self, trainer, *args):
                if trainer.global_step >= steps:
                    raise RuntimeError("simulated crash")

        return _Crash()


def cli(tmp_path, *extra, callbacks=None):
    args = ["fit", "--config", str(CONFIGS / "inverse_random.yaml"), "--trainer.max_steps", "1000",
            "--trainer.logger.init_args.save_dir", str(tmp_path), "--trainer.enable_progress_bar", "false",
            "--checkpoint.every_n_train_steps", "300", *extra]
    return GdlaCLI(args=args, trainer_defaults={"callbacks": list(callbacks or [])})


def test_resume_after_crash_matches_uninterrupted_run(tmp_path):
    # SGD with momentum: resuming needs the optimizer state (momentum buffers), not only X.
    full = cli(tmp_path / "full").model.result
    with pytest.raises(RuntimeError, match="simulated crash"):
        cli(tmp_path / "crash", callbacks=[CrashAfter(700)])
    last = tmp_path / "crash" / "inverse_random" / "checkpoints" / "last.ckpt"
    assert last.exists()
    assert torch.load(last, weights_only=False)["global_step"] == 600
    resumed = cli(tmp_path / "crash", "--ckpt_path", "last").model.result
    assert resumed.steps == full.steps == 1000
    assert torch.equal(resumed.history, full.history)
    assert torch.equal(resumed.solution, full.solution)


def test_ctrl_c_in_solve_returns_best_so_far(M1):
    class InterruptedAt(gdla.MatrixInverse):
        evaluations = 0

        def forward(self):
            InterruptedAt.evaluations += 1
            if InterruptedAt.evaluations == 120:
                os.kill(os.getpid(), signal.SIGINT)  # what Ctrl-C sends
            return super().forward()

    handler = signal.getsignal(signal.SIGINT)
    result = gdla.solve(InterruptedAt(M1), optimizer=functools.partial(torch.optim.SGD, lr=0.9, momentum=0.9),
                        tol=0, max_steps=10_000)
    assert result.status is gdla.Status.INTERRUPTED and not result.converged
    assert result.reason.startswith("interrupted at step 120")
    assert result.steps == 120 and len(result.history) == 120
    assert result.loss == pytest.approx(result.history.min().item())
    assert signal.getsignal(signal.SIGINT) is handler  # the user's handler is back


def test_ctrl_c_then_resume_reproduces_the_uninterrupted_run_exactly(tmp_path):
    # The interrupt checkpoint is written after the run returned its best point; it must still
    # hold the optimizer's own iterate (with which its momentum belongs), or the resumed run drifts.
    import pytorch_lightning as pl

    class CtrlC(pl.Callback):
        sent = False

        def on_train_batch_end(self, trainer, *args):
            if trainer.global_step >= 300 and not self.sent:
                self.sent = True
                os.kill(os.getpid(), signal.SIGINT)

    full = cli(tmp_path / "full").model.result
    handler = signal.getsignal(signal.SIGINT)
    stopped = cli(tmp_path / "stopped", "--model.steps_per_block", "50", callbacks=[CtrlC()]).model.result
    assert stopped.status is gdla.Status.INTERRUPTED and 300 < stopped.steps < 1000
    assert signal.getsignal(signal.SIGINT) is handler
    resumed = cli(tmp_path / "stopped", "--ckpt_path", "last").model.result
    assert resumed.steps == full.steps == 1000
    assert torch.equal(resumed.history, full.history)
    assert torch.equal(resumed.solution, full.solution)


_KILLED_RUN = """
import os, signal, sys
import pytorch_lightning as pl
from torch_gdla.cli import GdlaCLI

class KillAt(pl.Callback):
    def on_train_batch_end(self, trainer, *args):
        if trainer.global_step >= 700:
            os.kill(os.getpid(), signal.SIGKILL)  # no handler, no cleanup: the machine went down

GdlaCLI(args=sys.argv[1:], trainer_defaults={"callbacks": [KillAt()]})
"""


def test_a_run_killed_with_sigkill_resumes_to_the_uninterrupted_answer(tmp_path):
    import subprocess
    import sys

    args = ["fit", "--config", str(CONFIGS / "inverse_random.yaml"), "--trainer.max_steps", "1000",
            "--trainer.logger.init_args.save_dir", str(tmp_path / "killed"), "--trainer.enable_progress_bar", "false",
            "--checkpoint.every_n_train_steps", "300"]
    killed = subprocess.run([sys.executable, "-c", _KILLED_RUN, *args], capture_output=True, text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    last = tmp_path / "killed" / "inverse_random" / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=False)["global_step"] == 600  # an intact file, not a partial write
    full = cli(tmp_path / "full").model.result
    resumed = cli(tmp_path / "killed", "--ckpt_path", "last").model.result
    assert resumed.steps == full.steps == 1000
    assert torch.equal(resumed.history, full.history)
    assert torch.equal(resumed.solution, full.solution)
