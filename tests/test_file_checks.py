"""Matrix files are checked before they are read: what the path is, what the header declares
(against the file and the machine's memory), byte order, and refusals that never advise
disabling a loader's safety."""
import os
import re

import numpy as np
import pytest
import torch

import torch_gdla as gdla
from torch_gdla.errors import ArgumentError
from torch_gdla.matrices import File, headers, load

# Advice that would make a loader run code from the file; no message of ours may contain it.
UNSAFE = re.compile(r"weights_only\W+(set to\W+)?False|allow_pickle\W+True|safe_globals|if you trust", re.IGNORECASE)


def _npy_header_only(path, shape, descr="<f8", data=b"\0" * 64):
    """A .npy file whose header declares ``shape`` but which holds only ``data``."""
    with open(path, "wb") as handle:
        np.lib.format.write_array_header_1_0(handle, {"descr": descr, "fortran_order": False, "shape": shape})
        handle.write(data)
    return path


def _small_memory(monkeypatch, nbytes=1 << 30):
    monkeypatch.setattr(headers, "physical_memory", lambda: nbytes)


# -- the declared size -------------------------------------------------------------------------------
def test_npy_header_declaring_a_huge_array_is_refused_before_allocating(tmp_path):
    path = _npy_header_only(tmp_path / "huge.npy", (10**6, 10**6))
    with pytest.raises(ArgumentError) as info:
        load(path)
    message = str(info.value)
    assert repr(str(path)) in message and "shape (1000000, 1000000)" in message
    assert "8,000,000,000,000 bytes (7.3 TiB)" in message and "holds only 64" in message and "truncated" in message


def test_npy_shorter_than_its_header_names_both_sizes(tmp_path):
    path = _npy_header_only(tmp_path / "short.npy", (10, 3), data=b"\0" * 80)
    with pytest.raises(ArgumentError, match=r"short\.npy' declares a float64 array of shape \(10, 3\), which needs "
                                            r"240 bytes of data, but the file holds only 80: it is truncated"):
        load(path)


def test_complete_npy_too_large_for_memory_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "A.npy"
    np.save(path, np.zeros((64, 64)))
    _small_memory(monkeypatch, 4096)
    with pytest.raises(ArgumentError, match=r"A\.npy' declares a float64 array of shape \(64, 64\), which would need "
                                            r"32,768 bytes \(32\.0 KiB\) in memory, more than this machine's 4\.0 KiB "
                                            r"of memory; stream its rows with gdla\.StreamedLeastSquares"):
        load(path)
    _small_memory(monkeypatch, 1 << 30)
    assert torch.equal(load(path), torch.zeros(64, 64, dtype=torch.float64))


def test_mtx_array_header_of_a_huge_matrix_is_refused(tmp_path):
    path = tmp_path / "huge.mtx"
    path.write_text("%%MatrixMarket matrix array real general\n10000000 10000000\n1\n2\n")
    with pytest.raises(ArgumentError) as info:
        load(path)
    message = str(info.value)
    assert repr(str(path)) in message and "array real general matrix of shape (10000000, 10000000)" in message
    assert "at least 200,000,000,000,000 bytes" in message and "truncated" in message


def test_mtx_declaring_more_entries_than_it_holds_is_refused(tmp_path):
    path = tmp_path / "entries.mtx"
    path.write_text("%%MatrixMarket matrix coordinate real general\n3 3 1000000000000\n1 1 1\n")
    with pytest.raises(ArgumentError, match=r"shape \(3, 3\) with 1,000,000,000,000 stored entries, which needs at "
                                            r"least 4,000,000,000,000 bytes .* of text"):
        load(path)


def test_a_huge_sparse_mtx_stays_sparse_and_is_refused_only_when_made_dense(tmp_path, monkeypatch):
    path = tmp_path / "sparse.mtx"
    path.write_text("%%MatrixMarket matrix coordinate real general\n1000000 1000000 1\n1 1 1\n")
    _small_memory(monkeypatch)
    loaded = load(path)  # one stored entry: a few bytes, whatever the shape
    assert loaded.layout == torch.sparse_csr and loaded.shape == (1000000, 1000000)
    with pytest.raises(ArgumentError, match=r"sparse\.mtx' declares a sparse matrix to make dense of "
                                            r"shape \(1000000, 1000000\) with 1 stored entries, which would need "
                                            r"8,000,000,000,000 bytes \(7\.3 TiB\) in memory"):
        File(str(path), dense=True).tensor()


def test_symmetric_mtx_storing_one_triangle_is_not_mistaken_for_truncated(tmp_path):
    path = tmp_path / "symmetric.mtx"
    path.write_text("%%MatrixMarket matrix array real symmetric\n3 3\n0\n0\n0\n0\n0\n0\n")
    assert torch.equal(load(path), torch.zeros(3, 3, dtype=torch.float64))


# -- what the path is --------------------------------------------------------------------------------
def test_directory_is_named_as_a_directory(tmp_path):
    folder = tmp_path / "matrix.npy"
    folder.mkdir()
    with pytest.raises(ArgumentError, match=r"^matrix file '.*matrix\.npy' is a directory; pass a matrix file$"):
        load(folder)
    with pytest.raises(ValueError, match=r"^M: matrix file '.*matrix\.npy' is a directory"):
        gdla.MatrixInverse(File(str(folder)))


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes on this platform")
def test_fifo_is_named_as_a_fifo_without_blocking_on_it(tmp_path):
    fifo = tmp_path / "matrix.csv"
    os.mkfifo(fifo)
    with pytest.raises(ArgumentError, match=r"^matrix file '.*matrix\.csv' is a FIFO \(named pipe\); pass a matrix file$"):
        load(fifo)


def test_dangling_symbolic_link_says_so(tmp_path):
    link = tmp_path / "A.pt"
    link.symlink_to(tmp_path / "gone.pt")
    with pytest.raises(FileNotFoundError, match=r"A\.pt' is a symbolic link to '.*gone\.pt', which does not exist"):
        load(link)


# -- byte order --------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [">f8", ">f4", ">i4"])
def test_big_endian_npy_is_loaded_in_native_order(tmp_path, dtype):
    path = tmp_path / "big_endian.npy"
    values = np.arange(6).reshape(2, 3)
    np.save(path, values.astype(dtype))
    tensor = load(path)
    assert tensor.tolist() == values.tolist()
    assert tensor.dtype == torch.from_numpy(np.zeros(1, dtype=np.dtype(dtype).newbyteorder("="))).dtype


# -- refusals never advise disabling safety --------------------------------------------------------------
def test_pt_refusals_keep_the_reason_and_drop_the_unsafe_advice(tmp_path):
    from fractions import Fraction

    needs_pickle = tmp_path / "fraction.pt"
    torch.save({"M": torch.eye(2), "x": Fraction(1, 3)}, needs_pickle)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x80\x02garbage that is not a tensor file")
    for path, reason in ((needs_pickle, "GLOBAL fractions.Fraction was not an allowed global"),
                         (garbage, "(Unsupported operand")):
        with pytest.raises(ArgumentError) as info:
            load(path)
        message = str(info.value)
        assert reason in message and not UNSAFE.search(message), message
        assert "\x1b[" not in message  # no terminal colour codes either


def test_npy_with_an_oversized_header_is_refused_without_the_allow_pickle_advice(tmp_path):
    path = tmp_path / "long_header.npy"
    header = b"{'descr': '<f8', 'fortran_order': False, 'shape': (2,), 'padding': '" + b"x" * 20000 + b"'}"
    header += b" " * (-(len(header) + 11) % 64) + b"\n"
    path.write_bytes(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + b"\0" * 16)
    with pytest.raises(ArgumentError, match=r"long_header\.npy' has an unreadable \.npy header \(Header info length") as info:
        load(path)
    assert not UNSAFE.search(str(info.value)) and "allow_pickle" not in str(info.value)


def test_safe_reason_drops_every_unsafe_sentence():
    error = RuntimeError("Weights only load failed. Re-running `torch.load` with `weights_only` set to `False` will "
                         "likely succeed.\nWeightsUnpickler error: Unsupported global: GLOBAL os.system. Please use "
                         "`torch.serialization.add_safe_globals([os.system])` if you trust this class/function.")
    assert headers.safe_reason(error) == "Unsupported global: GLOBAL os.system."
    assert headers.safe_reason(ValueError("To allow loading, fully trust the file using `allow_pickle=True`.")) == "ValueError"
