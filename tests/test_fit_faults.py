"""torch-gdla fit when things go wrong: broken or missing checkpoints, a run that has already
finished, a full disk, and arguments Lightning would refuse with a traceback.  Each is one line
on stderr (exit status 2 for a usage error), never a traceback, and never a lost checkpoint."""
import errno
import shutil
from pathlib import Path

import pytest
import torch

from torch_gdla import checkpoints
from torch_gdla.cli import main
from torch_gdla.plot import read_run

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


def fit_args(save_dir, *extra, max_steps=20, config="inverse_random.yaml"):
    return ["fit", "--config", str(CONFIGS / config), "--trainer.max_steps", str(max_steps),
            "--trainer.logger.init_args.save_dir", str(save_dir), "--trainer.enable_progress_bar", "false",
            "--checkpoint.every_n_train_steps", "10", *extra]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A 20-step run with checkpoints at steps 10 and 20 (the top-1 file and last.ckpt)."""
    save_dir = tmp_path_factory.mktemp("finished")
    main(fit_args(save_dir))
    return save_dir


@pytest.fixture
def run_dir(finished_run, tmp_path):
    copy = tmp_path / "runs"
    shutil.copytree(finished_run, copy)
    return copy


def checkpoint_dir(save_dir):
    return save_dir / "inverse_random" / "checkpoints"


def usage_error(capsys, args) -> str:
    """The command exits with status 2 and one line on stderr; returns that line."""
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1, err
    return err


# -- checkpoints -----------------------------------------------------------------------------------
@pytest.mark.parametrize("damage", ["random bytes", "truncated", "foreign"])
def test_a_corrupt_or_foreign_last_ckpt_is_one_line_offering_an_intact_one(run_dir, capsys, damage):
    last = checkpoint_dir(run_dir) / "last.ckpt"
    if damage == "random bytes":
        last.write_bytes(torch.randint(0, 256, (300,), dtype=torch.uint8).numpy().tobytes())
    elif damage == "truncated":
        last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])
    else:
        torch.save({"state_dict": {"w": torch.ones(2)}}, last)  # a torch file, not a solver's
    err = usage_error(capsys, fit_args(run_dir, "--ckpt_path", "last", max_steps=40))
    assert f"not a torch_gdla checkpoint / file is corrupt: {last}" in err
    intact = checkpoint_dir(run_dir) / "epoch=0-step=20.ckpt"
    assert f"an intact checkpoint at step 20 is {intact}: resume with --ckpt_path {intact}" in err
    assert "weights_only" not in err


def test_a_ckpt_path_at_a_file_that_is_no_checkpoint(run_dir, tmp_path, capsys):
    notes = tmp_path / "notes.txt"
    notes.write_text("not a checkpoint\n")
    err = usage_error(capsys, fit_args(run_dir, "--ckpt_path", str(notes)))
    assert f"not a torch_gdla checkpoint / file is corrupt: {notes}" in err
    assert "start without --ckpt_path or point at another checkpoint" in err
    err = usage_error(capsys, fit_args(run_dir, "--ckpt_path", str(tmp_path / "absent.ckpt")))
    assert "absent.ckpt: no such file" in err


def test_a_checkpoint_of_another_problem_is_refused(run_dir, capsys):
    last = checkpoint_dir(run_dir) / "last.ckpt"
    err = usage_error(capsys, fit_args(run_dir, "--ckpt_path", str(last), "--model.problem.init_args.M.init_args.shape",
                                       "[3, 3]"))
    assert "is a checkpoint of a different problem: the shape of M is (4, 4) there and (3, 3) in this config" in err


def test_ckpt_path_last_without_last_ckpt_lists_what_is_there(run_dir, capsys):
    (checkpoint_dir(run_dir) / "last.ckpt").unlink()
    err = usage_error(capsys, fit_args(run_dir, "--ckpt_path", "last", max_steps=40))
    assert f"--ckpt_path last: no last.ckpt in {checkpoint_dir(run_dir)} (it holds epoch=0-step=20.ckpt)" in err


def test_ckpt_path_last_on_a_first_run_starts_from_step_0(tmp_path, capsys):
    main(fit_args(tmp_path, "--ckpt_path", "last", max_steps=5))
    out = capsys.readouterr().out
    assert "no checkpoint in" in out and "yet; starting from step 0" in out
    assert "steps:       5" in out


@pytest.mark.parametrize("max_steps", [20, 10])
def test_resuming_a_finished_run_reports_it_and_writes_output(run_dir, tmp_path, capsys, max_steps):
    output = tmp_path / "solution.pt"
    main(fit_args(run_dir, "--ckpt_path", "last", "--output", str(output), max_steps=max_steps))
    out = capsys.readouterr().out
    assert f"already finished at step 20 (max_steps {max_steps}): nothing left to run" in out
    assert "steps:       20" in out and "solution:" in out
    # the finished run's own answer (its best point), not the optimizer's iterate in the weights
    saved = torch.load(checkpoint_dir(run_dir) / "last.ckpt", weights_only=False)
    assert torch.equal(torch.load(output), saved["torch_gdla_iteration"]["best"][0])
    assert not torch.equal(torch.load(output), saved["state_dict"]["problem.X"])
    # No empty log version: `plot` still finds the run's metrics.
    assert sorted(p.name for p in (run_dir / "inverse_random").glob("version_*")) == ["version_0"]
    assert read_run(run_dir / "inverse_random").path.name == "version_0"


# -- a full disk -----------------------------------------------------------------------------------
def disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_full_disk_keeps_the_previous_checkpoint_and_the_result(run_dir, capsys, monkeypatch):
    directory = checkpoint_dir(run_dir)
    before = {p.name: p.read_bytes() for p in directory.iterdir()}

    def partial_write(obj, file):
        file.write(b"PK\x03\x04 half a checkpoint")
        disk_full()

    monkeypatch.setattr(checkpoints, "_write", partial_write)
    main(fit_args(run_dir, "--ckpt_path", "last", max_steps=40))
    captured = capsys.readouterr()
    assert "steps:       40" in captured.out  # the run went on to its end
    notes = [line for line in captured.err.splitlines() if "could not write checkpoints" in line]
    assert notes == [f"torch-gdla fit: could not write checkpoints in {directory}: No space left on device; "
                     "the run goes on, and the checkpoints already there are kept intact"]
    assert {p.name: p.read_bytes() for p in directory.iterdir()} == before  # nothing replaced, removed or left over


def test_a_full_disk_for_config_yaml_is_one_line(tmp_path, capsys, monkeypatch):
    import jsonargparse

    monkeypatch.setattr(jsonargparse.ArgumentParser, "save", disk_full)
    main(fit_args(tmp_path, max_steps=5))
    captured = capsys.readouterr()
    assert "steps:       5" in captured.out
    assert "could not write config.yaml in" in captured.err and "No space left on device" in captured.err
    assert "Traceback" not in captured.err


# -- arguments ---------------------------------------------------------------------------------------
def test_output_at_a_directory_or_under_a_file(tmp_path, capsys):
    err = usage_error(capsys, fit_args(tmp_path / "runs", "--output", str(tmp_path)))
    assert f"--output {tmp_path} is a directory; give a file in it" in err
    (tmp_path / "file.txt").write_text("")
    err = usage_error(capsys, fit_args(tmp_path / "runs", "--output", str(tmp_path / "file.txt" / "x.pt")))
    assert "file.txt is a file, not a directory" in err
    assert not (tmp_path / "runs").exists()  # refused before the run


def test_output_in_a_directory_that_is_not_writable(tmp_path, capsys, monkeypatch):
    locked = tmp_path / "locked"
    locked.mkdir()

    def refuse(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    # chmod does not stop root, so the write probe is made to fail as it would for a user.
    monkeypatch.setattr("torch_gdla.cli_checks.tempfile.TemporaryFile", refuse)
    err = usage_error(capsys, fit_args(tmp_path / "runs", "--output", str(locked / "new" / "x.pt")))
    assert f"--output {locked / 'new' / 'x.pt'}: cannot write in directory {locked}" in err
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("argument, expected", [
    ("--trainer.max_steps=-5", "--trainer.max_steps=-5: give the number of optimizer steps to run"),
    ("--checkpoint.every_n_train_steps=-1", "--checkpoint.every_n_train_steps=-1: give a positive number"),
    ("--trainer.max_epochs=-5", "the trainer settings were refused: `max_epochs` must be"),
])
def test_arguments_lightning_would_refuse_with_a_traceback(tmp_path, capsys, argument, expected):
    err = usage_error(capsys, fit_args(tmp_path, argument, max_steps=5))  # the last value of an option counts
    assert expected in err


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_accelerator_gpu_without_one(tmp_path, capsys):
    err = usage_error(capsys, fit_args(tmp_path, "--trainer.accelerator=gpu"))
    assert "--trainer.accelerator=gpu: no CUDA GPU is available on this machine" in err
    assert "--trainer.accelerator=cpu" in err


def test_ctrl_c_saves_last_ckpt_and_prints_the_result(tmp_path, capsys):
    import os
    import signal

    import pytorch_lightning as pl

    from torch_gdla.fit_cli import GdlaCLI

    class CtrlC(pl.Callback):
        sent = False

        def on_train_batch_end(self, trainer, *args):
            if trainer.global_step >= 5 and not self.sent:
                self.sent = True
                os.kill(os.getpid(), signal.SIGINT)  # what Ctrl-C sends (once: a second one stops at once)

    handler = signal.getsignal(signal.SIGINT)
    cli = GdlaCLI(args=fit_args(tmp_path, "--model.steps_per_block", "5", max_steps=1000),
                  trainer_defaults={"callbacks": [CtrlC()]})
    assert cli.model.result.status.name == "INTERRUPTED" and signal.getsignal(signal.SIGINT) is handler
    last = checkpoint_dir(tmp_path) / "last.ckpt"
    assert f"interrupted: state saved to {last}; resume with --ckpt_path last" in capsys.readouterr().out
    assert checkpoints.read_checkpoint(last).step == cli.model.result.steps
