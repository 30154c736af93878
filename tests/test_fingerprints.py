"""A checkpoint carries a fingerprint of its problem (class, dtype, shapes and a hash of the given
tensors), and a resume into a different problem is refused: by `torch-gdla fit` in one line with
exit status 2 before the fit starts, and by `trainer.fit(module, ckpt_path=...)` with a
CheckpointError.  Checkpoints written before fingerprints still resume, with a warning."""
import functools
from pathlib import Path

import pytest
import torch

import torch_gdla as gdla
from torch_gdla import fingerprints
from torch_gdla.checkpoints import CheckpointError
from torch_gdla.cli import main
from torch_gdla.fingerprints import (
    FINGERPRINT_KEY,
    UnverifiedCheckpointWarning,
    difference,
    fingerprint,
)

SYSTEM = """\
model:
  problem:
    class_path: torch_gdla.LinearSystem
    init_args:
      A: {{class_path: torch_gdla.matrices.Random, init_args: {{shape: [12, 12], seed: {seed}, distribution: normal, dtype: {dtype}}}}}
      b: {{class_path: torch_gdla.matrices.Random, init_args: {{shape: [12], seed: {seed}, dtype: {dtype}}}}}
  optimizer: {{class_path: torch.optim.SGD, init_args: {{lr: 0.01, momentum: 0.9}}}}
  criteria: {{tol: 0}}
trainer:
  logger: {{class_path: pytorch_lightning.loggers.CSVLogger, init_args: {{save_dir: {save_dir}, name: system}}}}
"""


def config(tmp_path, seed=3, dtype="float32", name=None):
    path = tmp_path / (name or f"system_{seed}_{dtype}.yaml")
    path.write_text(SYSTEM.format(seed=seed, dtype=dtype, save_dir=tmp_path / "runs"))
    return path


def fit(config_path, *extra, max_steps=20):
    main(["fit", "--config", str(config_path), "--trainer.max_steps", str(max_steps), "--trainer.enable_progress_bar",
          "false", "--checkpoint.every_n_train_steps", "10", *extra])


def last_ckpt(tmp_path):
    return tmp_path / "runs" / "system" / "checkpoints" / "last.ckpt"


def refused(capsys, *args, **kwargs) -> str:
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        fit(*args, **kwargs)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1, err
    return err


@pytest.fixture
def run_a(tmp_path):
    """Run A: the random 12×12 system of seed 3, 20 steps, checkpoints every 10."""
    fit(config(tmp_path, seed=3))
    return tmp_path


# -- torch-gdla fit ------------------------------------------------------------------------------------
def test_resume_into_another_matrix_of_the_same_shape_is_refused(run_a, capsys):
    before = last_ckpt(run_a).read_bytes()
    err = refused(capsys, config(run_a, seed=4), "--ckpt_path", "last", max_steps=40)
    assert f"{last_ckpt(run_a)} is a checkpoint of a different problem: the values of A differ " \
           "(same shape (12, 12), different entries)" in err
    assert "start without --ckpt_path" in err
    assert last_ckpt(run_a).read_bytes() == before  # refused before the fit: nothing written


def test_the_same_problem_still_resumes(run_a, capsys):
    fit(config(run_a, seed=3, name="again.yaml"), "--ckpt_path", "last", max_steps=40)
    captured = capsys.readouterr()
    assert "steps:       40" in captured.out and "warning" not in captured.err


def test_resume_into_another_dtype_shape_or_class_names_the_part(run_a, capsys):
    err = refused(capsys, config(run_a, dtype="float64"), "--ckpt_path", "last", max_steps=40)
    assert "a checkpoint of a different problem: the dtype is float32 there and float64 in this config" in err
    err = refused(capsys, config(run_a), "--ckpt_path", "last", "--model.problem.init_args.A.init_args.shape",
                  "[10, 10]", "--model.problem.init_args.b.init_args.shape", "[10]", max_steps=40)
    assert "the shape of A is (12, 12) there and (10, 10) in this config" in err
    inverse = run_a / "inverse.yaml"
    inverse.write_text(config(run_a).read_text().replace("torch_gdla.LinearSystem", "torch_gdla.MatrixInverse")
                       .replace("      b: {class_path: torch_gdla.matrices.Random, init_args: {shape: [12], seed: 3, "
                                "dtype: float32}}\n", "").replace("A: {", "M: {"))
    err = refused(capsys, inverse, "--ckpt_path", "last", max_steps=40)
    assert "the problem is a LinearSystem there and a MatrixInverse in this config" in err


def without_fingerprint(path: Path) -> None:
    checkpoint = torch.load(path, weights_only=True)
    del checkpoint[FINGERPRINT_KEY]
    torch.save(checkpoint, path)


def test_a_checkpoint_from_before_fingerprints_resumes_with_a_warning_line(run_a, capsys):
    without_fingerprint(last_ckpt(run_a))
    capsys.readouterr()
    fit(config(run_a, seed=3), "--ckpt_path", "last", max_steps=40)
    captured = capsys.readouterr()
    assert "steps:       40" in captured.out
    warnings = [line for line in captured.err.splitlines() if "fingerprint" in line]
    assert warnings == [f"torch-gdla fit: warning: {last_ckpt(run_a)} carries no problem fingerprint (written by an "
                        "older torch_gdla): resuming without checking that it belongs to this config's problem"]


# -- trainer.fit(module, ckpt_path=...) ----------------------------------------------------------------
def module(seed):
    A = torch.randn(12, 12, generator=torch.Generator().manual_seed(seed))
    problem = gdla.LinearSystem(A, torch.ones(12))
    return gdla.SolverModule(problem, functools.partial(torch.optim.SGD, lr=0.01, momentum=0.9),
                             criteria=gdla.Criteria(tol=0))


def trainer(tmp_path, max_steps):
    import pytorch_lightning as pl

    return pl.Trainer(max_steps=max_steps, default_root_dir=tmp_path, logger=False, enable_progress_bar=False,
                      enable_model_summary=False, enable_checkpointing=False)


def test_python_resume_into_another_problem_raises(tmp_path):
    path = tmp_path / "a.ckpt"
    trainer_ = trainer(tmp_path, 10)
    trainer_.fit(first := module(3))
    trainer_.save_checkpoint(path)
    other = module(4)
    A_before = other.problem.A.clone()
    with pytest.raises(CheckpointError, match=r"a\.ckpt is a checkpoint of a different problem: the values of A differ"):
        trainer(tmp_path, 20).fit(other, ckpt_path=path)
    assert torch.equal(other.problem.A, A_before)  # the checkpoint's matrix was not loaded over it
    same = module(3)
    trainer(tmp_path, 20).fit(same, ckpt_path=path)
    assert same.result.steps == 20 and first.result.steps == 10


def test_python_resume_of_a_checkpoint_without_fingerprint_warns(tmp_path):
    trainer_ = trainer(tmp_path, 10)
    trainer_.fit(module(3))
    path = tmp_path / "old.ckpt"
    trainer_.save_checkpoint(path)
    without_fingerprint(path)
    resumed = module(3)
    with pytest.warns(UnverifiedCheckpointWarning, match="carries no problem fingerprint"):
        trainer(tmp_path, 20).fit(resumed, ckpt_path=path)
    assert resumed.result.steps == 20


# -- the fingerprint itself ----------------------------------------------------------------------------
def test_fingerprint_names_class_dtype_and_given_tensors():
    problem = gdla.LinearSystem(torch.eye(3) * 2, torch.ones(3))
    print_ = fingerprint(problem)
    assert print_["class"].endswith(".LinearSystem") and print_["dtype"] == "float32"
    assert sorted(print_["tensors"]) == ["A", "b"]  # not the derived _rhs_norms
    assert print_["tensors"]["A"]["shape"] == [3, 3]
    assert difference(print_, fingerprint(gdla.LinearSystem(torch.eye(3) * 2, torch.ones(3)))) is None
    assert difference(print_, fingerprint(gdla.LinearSystem(torch.eye(3) * 2, torch.ones(3) * 2))) == \
        "the values of b differ (same shape (3,), different entries)"
    loaded = torch.load(_saved(print_), weights_only=True)  # plain values: loadable without pickle
    assert loaded == print_


def _saved(value):
    import io

    buffer = io.BytesIO()
    torch.save(value, buffer)
    buffer.seek(0)
    return buffer


def test_a_large_tensor_is_sampled_and_its_sum_and_norm_catch_what_the_sample_skips(monkeypatch):
    monkeypatch.setattr(fingerprints, "SAMPLE", 64)
    A = torch.randn(40, 40, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    base = fingerprint(gdla.MatrixInverse(A))
    entry = base["tensors"]["M"]
    assert entry["sampled_every"] == 25 and "sum" in entry and "norm" in entry
    sampled, skipped = A.clone(), A.clone()
    sampled.view(-1)[25] += 1.0  # an entry of the strided sample
    skipped.view(-1)[26] += 1.0  # an entry between samples: the sum and the norm change
    for changed in (sampled, skipped, A * 1.001):
        assert difference(base, fingerprint(gdla.MatrixInverse(changed))) == \
            "the values of M differ (same shape (40, 40), different entries)"
    assert difference(base, fingerprint(gdla.MatrixInverse(A.clone()))) is None
