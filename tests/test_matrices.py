"""The matrix gallery against closed forms, and every file format round-tripping a matrix."""
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from torch_gdla import matrices as m

DATA = Path(__file__).resolve().parent / "data"


def _integer(tensor, atol=1e-6):
    return torch.allclose(tensor, tensor.round(), rtol=0, atol=atol)


@pytest.mark.parametrize("n", [1, 4, 7])
def test_hilbert_inverse_is_the_integer_closed_form(n):
    H = m.Hilbert(n).tensor()
    assert H.dtype == torch.float64 and H[0, 0] == 1 and H[n - 1, n - 1] == pytest.approx(1 / (2 * n - 1))
    closed = torch.tensor([[(-1) ** (i + j) * (i + j - 1) * math.comb(n + i - 1, n - j) * math.comb(n + j - 1, n - i)
                            * math.comb(i + j - 2, i - 1) ** 2 for j in range(1, n + 1)] for i in range(1, n + 1)],
                          dtype=torch.float64)
    inverse = torch.linalg.inv(H)
    assert torch.allclose(inverse, closed, rtol=1e-5, atol=1e-6)
    assert _integer(inverse, atol=1e-3 * float(closed.abs().max()) if n > 4 else 1e-6)


def test_hilbert_condition_grows_like_e_to_the_3_5_n():
    ratio = float(torch.linalg.cond(m.Hilbert(8).tensor()) / torch.linalg.cond(m.Hilbert(6).tensor()))
    assert ratio == pytest.approx(math.exp(3.5 * 2), rel=0.5)
    assert float(torch.linalg.cond(m.Hilbert(4).tensor())) == pytest.approx(15513.7387, rel=1e-6)


@pytest.mark.parametrize("n", [3, 6])
def test_pascal_has_determinant_one_and_integer_inverse(n):
    P = m.Pascal(n).tensor()
    assert P[n - 1].tolist()[:3] == [1, n, n * (n + 1) / 2]
    assert torch.linalg.det(P).item() == pytest.approx(1.0, abs=1e-6)
    # P = L Lᵀ, L the lower Pascal matrix; L⁻¹ is L with signs (-1)^(i+j).
    L_inv = torch.tensor([[(-1) ** (i + j) * math.comb(i, j) for j in range(n)] for i in range(n)], dtype=torch.float64)
    inverse = torch.linalg.inv(P)
    assert torch.allclose(inverse, L_inv.mT @ L_inv, atol=1e-6)
    assert _integer(inverse)


def test_lehmer_is_spd_with_the_known_tridiagonal_inverse():
    n = 6
    A = m.Lehmer(n).tensor()
    assert A[1, 3] == pytest.approx(2 / 4) and torch.equal(A, A.mT)
    assert torch.linalg.eigvalsh(A).min() > 0
    expected = torch.zeros(n, n, dtype=torch.float64)
    for i in range(1, n + 1):
        expected[i - 1, i - 1] = 4 * i**3 / (4 * i**2 - 1) if i < n else n**2 / (2 * n - 1)
        if i < n:
            expected[i - 1, i] = expected[i, i - 1] = -i * (i + 1) / (2 * i + 1)
    assert torch.allclose(torch.linalg.inv(A), expected, atol=1e-10)
    assert n <= float(torch.linalg.cond(A)) <= 4 * n * n


def test_vandermonde_entries_and_determinant():
    V = m.Vandermonde(points=[2, 3, 5]).tensor()
    assert torch.equal(V, torch.tensor([[1, 2, 4], [1, 3, 9], [1, 5, 25]], dtype=torch.float64))
    assert torch.linalg.det(V).item() == pytest.approx((3 - 2) * (5 - 2) * (5 - 3))
    assert torch.equal(m.Vandermonde(n=3, increasing=False).tensor()[2], torch.tensor([9.0, 3.0, 1.0], dtype=torch.float64))
    with pytest.raises(ValueError, match="exactly one of points"):
        m.Vandermonde(points=[1, 2], n=2)


def test_frank_small_case_and_unit_determinant():
    assert torch.equal(m.Frank(3).tensor(), torch.tensor([[3, 2, 1], [2, 2, 1], [0, 1, 1]], dtype=torch.float64))
    assert torch.linalg.det(m.Frank(8).tensor()).item() == pytest.approx(1.0, abs=1e-6)


def test_kahan_small_case_and_closed_form_inverse():
    theta = 1.2
    s, c = math.sin(theta), math.cos(theta)
    K = m.Kahan(3, theta).tensor()
    assert torch.allclose(K, torch.tensor([[1, -c, -c], [0, s, -s * c], [0, 0, s * s]], dtype=torch.float64))
    n = 6  # (I - cU)⁻¹ has c(1+c)^(j-i-1) above the diagonal
    unit_inverse = torch.tensor([[1.0 if i == j else (c * (1 + c) ** (j - i - 1) if j > i else 0.0) for j in range(n)]
                                 for i in range(n)], dtype=torch.float64)
    expected = unit_inverse / torch.tensor([s**i for i in range(n)], dtype=torch.float64)
    assert torch.allclose(torch.linalg.inv(m.Kahan(n, theta).tensor()), expected, atol=1e-10)


def test_wilkinson_small_case_and_its_famous_eigenvalue_pair():
    assert torch.equal(m.Wilkinson(3).tensor(), torch.tensor([[1, 1, 0], [1, 0, 1], [0, 1, 1]], dtype=torch.float64))
    top = torch.linalg.eigvalsh(m.Wilkinson(21).tensor())[-2:]
    assert top.tolist() == pytest.approx([10.746194182903322, 10.746194182903393], abs=1e-12)


@pytest.mark.parametrize("n", [1, 5, 30])
def test_tridiagonal_eigenvalues(n):
    T = m.Tridiagonal(n).tensor()
    k = torch.arange(1, n + 1, dtype=torch.float64)
    expected = 2 - 2 * torch.cos(k * math.pi / (n + 1))
    assert torch.allclose(torch.linalg.eigvalsh(T), expected.sort().values, atol=1e-12)
    if n > 1:
        assert T[1, 0] == -1 and T[0, 1] == -1 and T[0, 0] == 2


@pytest.mark.parametrize("kind,m_rows", [("spd", None), ("general", None), ("general", 9)])
def test_conditioned_has_the_requested_condition_number(kind, m_rows):
    A = m.Conditioned(6, cond=1e4, kind=kind, seed=3, m=m_rows).tensor()
    assert A.shape == (m_rows or 6, 6)
    assert float(torch.linalg.cond(A)) == pytest.approx(1e4, rel=1e-8)
    if kind == "spd":
        assert torch.allclose(A, A.mT) and torch.linalg.eigvalsh(A).min() > 0
    assert torch.equal(A, m.Conditioned(6, cond=1e4, kind=kind, seed=3, m=m_rows).tensor())  # seeded
    with pytest.raises(ValueError, match="cond must be"):
        m.Conditioned(4, cond=0.5)
    with pytest.raises(ValueError, match="kind='spd' makes a square"):
        m.Conditioned(4, cond=10, m=6)


def test_identity_plus_noise_is_seeded_and_close_to_identity():
    A = m.IdentityPlusNoise(50, scale=0.01, seed=1).tensor()
    generator = torch.Generator().manual_seed(1)
    assert torch.allclose(A, torch.eye(50) + 0.01 * torch.randn(50, 50, generator=generator))
    bound = 2 * 0.01 * math.sqrt(50)
    assert float(torch.linalg.cond(A)) < (1 + 1.2 * bound) / (1 - 1.2 * bound)


def test_dtype_casts_and_positive_sizes_are_checked():
    assert m.Hilbert(3, dtype="float32").tensor().dtype == torch.float32
    # a torch.dtype works as well as its name, for every gallery source
    assert m.Lehmer(4, dtype=torch.float64).tensor().dtype == torch.float64
    assert m.Hilbert(3, dtype=torch.float32).tensor().dtype == torch.float32
    assert m.Poisson2D(3, dtype=torch.float64).tensor().dtype == torch.float64
    assert m.Random((3, 3), dtype=torch.float64).tensor().dtype == torch.float64
    with pytest.raises(ValueError, match="dtype must be a floating dtype; got torch.int64"):
        m.Lehmer(4, dtype=torch.int64)
    with pytest.raises(ValueError, match="n must be a positive integer"):
        m.Pascal(0)


def test_gallery_sources_work_from_a_yaml_config(tmp_path):
    from torch_gdla.cli import GdlaCLI

    config = tmp_path / "lehmer.yaml"
    config.write_text(
        "model:\n  problem:\n    class_path: torch_gdla.MatrixInverse\n    init_args:\n"
        "      M: {class_path: torch_gdla.matrices.Lehmer, init_args: {n: 4}}\n"
        "trainer:\n  max_steps: 30\n  logger: false\n  enable_checkpointing: false\n  enable_progress_bar: false\n"
    )
    cli = GdlaCLI(args=["fit", "--config", str(config), "--trainer.default_root_dir", str(tmp_path)])
    expected_M = m.Lehmer(4).tensor()
    assert torch.equal(cli.model.problem.M, expected_M)
    assert torch.allclose(cli.model.result.solution, torch.linalg.inv(expected_M), atol=1e-6)


# --- files -------------------------------------------------------------------------------------

@pytest.mark.parametrize("suffix", [".pt", ".npy", ".csv", ".mtx"])
def test_each_format_round_trips_a_matrix(tmp_path, suffix):
    matrix = m.Random([3, 5], seed=7, distribution="normal").tensor().double()
    path = tmp_path / f"matrix{suffix}"
    m.save(matrix, path)
    loaded = m.load(path)
    assert loaded.shape == (3, 5)
    assert torch.equal(loaded.double(), matrix)  # exact: every format keeps all float64 digits
    assert torch.equal(m.File(str(path), dtype="float32").tensor(), matrix.float())


def test_matrix_market_sparse_file_stays_sparse():
    expected = torch.tensor([[4, 0, 0, -1], [0, 3, 0, 0], [0, 0.5, 2, 0], [-1, 0, 0, 5]], dtype=torch.float64)
    loaded = m.load(DATA / "sparse_4x4.mtx")
    assert loaded.layout == torch.sparse_csr and loaded.values().numel() == 7  # the 7 stored entries only
    assert torch.equal(loaded.to_dense(), expected)
    assert torch.equal(m.File(str(DATA / "sparse_4x4.mtx"), dense=True).tensor(), expected)


def test_matrix_market_symmetric_storage_is_expanded():
    # The file stores the lower triangle of tridiag(-1, 2, -1), as SuiteSparse files do.
    assert torch.equal(m.load(DATA / "symmetric_3x3.mtx").to_dense(), m.Tridiagonal(3).tensor())


def test_a_sparse_matrix_round_trips_through_matrix_market_as_sparse(tmp_path):
    matrix = m.Poisson2D(3).tensor()
    m.save(matrix, tmp_path / "poisson.mtx")
    assert "coordinate" in (tmp_path / "poisson.mtx").read_text().splitlines()[0]
    loaded = m.load(tmp_path / "poisson.mtx")
    assert loaded.layout == torch.sparse_csr and torch.equal(loaded.to_dense(), matrix.to_dense())
    with pytest.raises(ValueError, match=r"cannot write the sparse tensor to .*\.npy.*use \.mtx"):
        m.save(matrix, tmp_path / "poisson.npy")


def test_pt_needing_pickle_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    from fractions import Fraction  # any class outside torch's allow-list needs pickle to load

    torch.save({"matrix": torch.eye(2), "extra": Fraction(1, 3)}, path)
    with pytest.raises(ValueError, match="not a plain tensor file"):
        m.load(path)


def test_npy_object_array_is_refused(tmp_path):
    path = tmp_path / "objects.npy"
    np.save(path, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="object arrays are refused"):
        m.load(path)


def test_bad_files_get_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        m.load(tmp_path / "missing.npy")
    (tmp_path / "matrix.xlsx").write_text("x")
    with pytest.raises(ValueError, match="unsupported extension '.xlsx'; use .pt, .npy, .csv or .mtx"):
        m.load(tmp_path / "matrix.xlsx")
    (tmp_path / "ragged.csv").write_text("1,2\n3\n")
    with pytest.raises(ValueError, match="rows of different lengths"):
        m.load(tmp_path / "ragged.csv")
    (tmp_path / "broken.mtx").write_text("not a matrix market file\n")
    with pytest.raises(ValueError, match="not a valid Matrix Market file"):
        m.load(tmp_path / "broken.mtx")
    with pytest.raises(ValueError, match="use a .pt, .npy, .csv or .mtx extension"):
        m.save(torch.eye(2), tmp_path / "out.xlsx")


def test_save_solution_of_a_named_tuple(tmp_path):
    from collections import namedtuple

    SVD = namedtuple("SVD", "U S V")
    solution = SVD(torch.eye(2), torch.tensor([2.0, 1.0]), torch.eye(2))
    [pt] = m.save_solution(solution, tmp_path / "svd.pt")
    stored = torch.load(pt, weights_only=True)
    assert set(stored) == {"U", "S", "V"} and torch.equal(stored["S"], solution.S)
    written = m.save_solution(solution, tmp_path / "svd.npy")
    assert [p.name for p in written] == ["svd_U.npy", "svd_S.npy", "svd_V.npy"]
    assert torch.equal(m.load(written[1]), solution.S)
