"""StreamedLeastSquares (rows from disk or a Dataset) and row sharding, in one process."""
import functools
import os

import numpy as np
import pytest
import torch
from torch.utils.data import Dataset

import torch_gdla as gdla
from torch_gdla import sharding


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    directory = tmp_path_factory.mktemp("streamed")
    rng = np.random.default_rng(0)
    A = rng.standard_normal((3000, 6)).astype(np.float32)
    B = (A @ rng.standard_normal((6, 2)) + 0.3 * rng.standard_normal((3000, 2))).astype(np.float32)
    np.save(directory / "A.npy", A)
    np.save(directory / "B.npy", B)
    np.save(directory / "b.npy", np.ascontiguousarray(B[:, 0]))
    return directory, A.astype(np.float64), B.astype(np.float64)


def _lstsq(A, b):
    return np.linalg.lstsq(A, b, rcond=None)[0]


def test_full_batch_from_npy_equals_lstsq_with_default_optimizer(files):
    directory, A, B = files
    problem = gdla.StreamedLeastSquares(directory / "A.npy", directory / "b.npy", batch_size=None, dtype="float64")
    assert not problem.stochastic and problem.rows == 3000
    result = gdla.solve(problem)
    assert result.converged and result.residual <= 1e-8
    assert np.allclose(result.solution.numpy(), _lstsq(A, B[:, 0]), atol=1e-8)
    # residual() is the normal-equation residual over all rows
    x = np.zeros(6)
    problem.x.data.zero_()
    assert problem.residual() == pytest.approx(1.0)
    assert np.allclose(problem.reference().numpy(), _lstsq(A, B[:, 0]), atol=1e-10)


def test_minibatch_adam_float32_several_targets(files):
    directory, A, B = files
    problem = gdla.StreamedLeastSquares(str(directory / "A.npy"), str(directory / "B.npy"), batch_size=200, seed=1)
    assert problem.stochastic and problem.x.dtype == torch.float32 and len(problem.train_dataloader()) == 15
    result = gdla.solve(problem, functools.partial(torch.optim.Adam, lr=0.05), tol=0, max_steps=10**6, max_epochs=20)
    assert result.steps == 20 * 15
    reference = _lstsq(A, B)
    error = np.linalg.norm(result.solution.numpy() - reference) / np.linalg.norm(reference)
    assert error < 2e-2 and result.residual < 2e-2
    # the residual is the normal-equation residual of the returned (last) iterate
    x = result.solution.double().numpy()
    expected = np.linalg.norm(A.T @ (A @ x - B)) / np.linalg.norm(A.T @ B)
    assert result.residual == pytest.approx(expected, rel=1e-3)


class Rows(Dataset):
    """One (row, target) per item, as a user's own dataset might yield."""

    def __init__(self, A, b):
        self.A, self.b = torch.from_numpy(A), torch.from_numpy(b)

    def __len__(self):
        return len(self.A)

    def __getitem__(self, i):
        return self.A[i], self.b[i]


@pytest.mark.slow
def test_dataset_of_rows_with_sgd(files):
    _, A, B = files
    problem = gdla.StreamedLeastSquares(Rows(A, B[:, 0]), batch_size=500, shuffle=False)
    assert problem.n == 6 and problem.x.dtype == torch.float64
    result = gdla.solve(problem, functools.partial(torch.optim.SGD, lr=0.3), tol=0, max_steps=10**6, max_epochs=40)
    assert np.allclose(result.solution.numpy(), _lstsq(A, B[:, 0]), atol=3e-2)  # SGD noise floor
    assert np.allclose(problem.reference().numpy(), _lstsq(A, B[:, 0]), atol=1e-10)


def test_clear_errors(files, tmp_path):
    directory, A, _ = files
    with pytest.raises(FileNotFoundError, match="no such .npy file"):
        gdla.StreamedLeastSquares(tmp_path / "missing.npy", directory / "b.npy")
    with pytest.raises(ValueError, match="same number of rows"):
        gdla.StreamedLeastSquares(A, np.zeros(10))
    with pytest.raises(ValueError, match="b .* is required"):
        gdla.StreamedLeastSquares(A)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        gdla.StreamedLeastSquares(A, np.zeros(3000), batch_size=0)
    with pytest.raises(ValueError, match="n_features=5 but the data have 6"):
        gdla.StreamedLeastSquares(A, np.zeros(3000), n_features=5)
    with pytest.raises(TypeError, match=r"\(rows, targets\) pair"):
        gdla.StreamedLeastSquares(torch.utils.data.TensorDataset(torch.zeros(4, 3)))
    np.save(tmp_path / "ints.npy", np.zeros((4, 2), dtype=np.int64))
    with pytest.raises(TypeError, match="floating-point"):
        gdla.StreamedLeastSquares(tmp_path / "ints.npy", np.zeros(4))
    problem = gdla.StreamedLeastSquares(A, np.zeros(3000))
    with pytest.raises(ValueError, match="rows of 5 features"):
        problem((torch.zeros(2, 5), torch.zeros(2)))


# -- row sharding (the processes' split, in one process; tests/test_ddp.py runs it distributed) --
def test_shard_inverse_rows_and_columns():
    g = torch.Generator().manual_seed(0)
    M = torch.randn(7, 7, generator=g, dtype=torch.float64) + 7 * torch.eye(7, dtype=torch.float64)
    for side in ("left", "right"):
        problem = gdla.MatrixInverse(M, side=side)
        parts = [gdla.solve(sharding.shard(problem, rank, 3)).solution for rank in range(3)]
        assert [p.shape[-1] for p in parts] == [3, 2, 2]
        assert sharding.shard_indices(problem, 1, 3) == [1, 4]
        assert torch.allclose(sharding.assemble(problem, parts), torch.linalg.inv(M), atol=1e-10)


def test_shard_right_hand_sides_keeps_regularisation():
    g = torch.Generator().manual_seed(1)
    A, B = torch.randn(12, 5, generator=g, dtype=torch.float64), torch.randn(12, 4, generator=g, dtype=torch.float64)
    problem = gdla.LinearSystem(A, B, l2=0.5)
    parts = [gdla.solve(sharding.shard(problem, rank, 2)).solution for rank in range(2)]
    assert torch.allclose(sharding.assemble(problem, parts), problem.reference(), atol=1e-10)
    with pytest.raises(ValueError, match="one right-hand side"):
        sharding.shard(gdla.LinearSystem(A, B[:, 0]), 0, 2)
    with pytest.raises(ValueError, match="0 <= rank < world_size"):
        sharding.shard(problem, 2, 2)


def test_streamed_config(tmp_path):
    from test_cli import run_cli

    cli = run_cli("streamed_least_squares.yaml", tmp_path)
    result, problem = cli.model.result, cli.model.problem
    assert result.steps == 5 * 20  # 5 epochs of 20 batches of 1000 rows
    assert result.residual < 2e-2
    reference = problem.reference()
    assert (result.solution - reference).norm() / reference.norm() < 0.1  # from 1 at x = 0; uniform A is ill-conditioned


# -- the .npy files behind the rows (torch_gdla.data.NpyRows) --------------------------------------
def test_big_endian_npy_rows_are_read_in_native_order(files, tmp_path):
    directory, A, B = files
    np.save(tmp_path / "A.npy", A.astype(">f8"))
    np.save(tmp_path / "b.npy", B[:, 0].astype(">f8"))
    problem = gdla.StreamedLeastSquares(tmp_path / "A.npy", tmp_path / "b.npy", batch_size=1000)
    assert problem.x.dtype == torch.float64  # the data's dtype, whatever its byte order
    rows, targets = problem.dataset[1]
    assert torch.equal(rows, torch.from_numpy(A[1000:2000])) and torch.equal(targets, torch.from_numpy(B[1000:2000, 0]))
    assert np.allclose(problem.reference().numpy(), _lstsq(A, B[:, 0]), atol=1e-10)


def test_npy_paths_that_are_not_files_say_what_they_are(files, tmp_path):
    directory, _, _ = files
    (tmp_path / "A.npy").mkdir()
    with pytest.raises(ValueError, match=r"^A: '.*A\.npy' is a directory; pass a \.npy file$"):
        gdla.StreamedLeastSquares(tmp_path / "A.npy", directory / "b.npy")
    if hasattr(os, "mkfifo"):
        os.mkfifo(tmp_path / "b.npy")
        with pytest.raises(ValueError, match=r"^b: '.*b\.npy' is a FIFO \(named pipe\); pass a \.npy file$"):
            gdla.StreamedLeastSquares(directory / "A.npy", tmp_path / "b.npy")


def test_npy_shorter_than_its_header_is_refused_when_opened_and_when_read(files, tmp_path):
    directory, _, _ = files
    data = (directory / "A.npy").read_bytes()
    short = tmp_path / "short.npy"
    short.write_bytes(data[:-100])
    with pytest.raises(ValueError, match=r"^A \('.*short\.npy'\) declares a float32 array of shape \(3000, 6\), which "
                                         r"needs 72,000 bytes \(70\.3 KiB\) of data, but the file holds only 71,900: "
                                         r"it is truncated"):
        gdla.StreamedLeastSquares(short, directory / "b.npy")
    shrinking = tmp_path / "shrinking.npy"
    shrinking.write_bytes(data)
    problem = gdla.StreamedLeastSquares(shrinking, directory / "b.npy", batch_size=1000, shuffle=False)
    os.truncate(shrinking, len(data) - 100)  # the file changes after the problem was built
    with pytest.raises(OSError, match=r"shrinking\.npy' is shorter than its \.npy header says: rows 2000\.\.2999 end at "
                                      r"byte 72,128 but the file ended at 72,028"):
        problem.dataset[2]


def test_npy_refusals_never_advise_allow_pickle(files, tmp_path):
    directory, _, _ = files
    objects = tmp_path / "objects.npy"
    np.save(objects, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match=r"object arrays are refused \(loading them would unpickle\)") as info:
        gdla.StreamedLeastSquares(objects, directory / "b.npy")
    long_header = tmp_path / "long_header.npy"
    header = b"{'descr': '<f8', 'fortran_order': False, 'shape': (2,), 'padding': '" + b"x" * 20000 + b"'}"
    header += b" " * (-(len(header) + 11) % 64) + b"\n"
    long_header.write_bytes(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + b"\0" * 16)
    with pytest.raises(ValueError, match=r"^A \('.*long_header\.npy'\) has an unreadable \.npy header") as second:
        gdla.StreamedLeastSquares(long_header, directory / "b.npy")
    for error in (info.value, second.value):
        assert "allow_pickle" not in str(error) and "trust" not in str(error)


def test_fortran_order_npy_is_refused_unless_it_is_also_c_order(files, tmp_path):
    directory, A, B = files
    np.save(tmp_path / "F.npy", np.asfortranarray(A))
    with pytest.raises(ValueError, match=r"A \('.*F\.npy'\) is stored in Fortran order"):
        gdla.StreamedLeastSquares(tmp_path / "F.npy", directory / "b.npy")
    np.save(tmp_path / "column.npy", np.asfortranarray(A[:, :1]))  # one column: Fortran and C order agree
    problem = gdla.StreamedLeastSquares(tmp_path / "column.npy", directory / "b.npy", batch_size=None)
    assert torch.equal(problem.dataset[0][0], torch.from_numpy(A[:, :1]))
