"""gdla.sharding through the problem hooks num_pieces / split / join, in one process
(tests/test_ddp.py runs it on two processes)."""
import pytest
import torch

import torch_gdla as gdla
from torch_gdla import sharding


def matrix(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, n, generator=g, dtype=torch.float64) + n * torch.eye(n, dtype=torch.float64)


def test_assemble_takes_problems_results_or_tensors():
    M = matrix(9)
    problem = gdla.MatrixInverse(M)
    parts = [sharding.shard(problem, rank, 2) for rank in range(2)]
    results = [gdla.solve(part) for part in parts]
    expected = torch.linalg.inv(M)
    for given in (parts, results, [r.solution for r in results], [parts[0], results[1]]):
        torch.testing.assert_close(sharding.assemble(problem, given), expected, rtol=0, atol=1e-10)
    with pytest.raises(ValueError, match=r"part 0 has shape \(9, 4\): rank 0 of 2 should have \(9, 5\)"):
        sharding.assemble(problem, [results[1], results[0]])  # not in rank order
    with pytest.raises(TypeError, match="part 0 must be a shard problem, its Result or its solution tensor"):
        sharding.assemble(problem, ["x", "y"])
    with pytest.raises(ValueError, match="at least one part"):
        sharding.assemble(problem, [])


def test_hooks_of_the_inverse():
    M = matrix(5)
    left, right = gdla.MatrixInverse(M), gdla.MatrixInverse(M, side="right")
    assert left.num_pieces == right.num_pieces == 5
    piece = left.split([1, 3])
    assert type(piece) is gdla.LinearSystem and torch.equal(piece.A, M.mT) and piece.b.shape == (5, 2)
    assert torch.equal(right.split([0]).A, M)
    Y = torch.arange(10.0).reshape(5, 2)
    assert torch.equal(left.join(Y), Y.mT) and torch.equal(right.join(Y), Y)
    with pytest.raises(ValueError, match='side="both"\\) couples the rows and the columns'):
        sharding.shard(gdla.MatrixInverse(M, side="both"), 0, 2)


def test_spd_and_regularisation_carry_over():
    M = matrix(6)
    S = M @ M.mT
    for problem in (gdla.MatrixInverse(S, assume="spd"), gdla.LinearSystem(S, torch.eye(6, dtype=torch.float64)[:, :4], assume="spd")):
        parts = [sharding.shard(problem, rank, 2) for rank in range(2)]
        assert all(type(part) is gdla.SPDLinearSystem for part in parts)
        torch.testing.assert_close(sharding.assemble(problem, [gdla.solve(p) for p in parts]), problem.reference(),
                                   rtol=0, atol=1e-9)
    A, B = torch.randn(10, 4, dtype=torch.float64), torch.randn(10, 3, dtype=torch.float64)
    w = torch.linspace(0.5, 2.0, 10, dtype=torch.float64)
    problem = gdla.LinearSystem(A, B, weights=w, l2=0.3, l1=0.1, nonnegative=True)
    part = sharding.shard(problem, 1, 2)
    assert type(part) is gdla.RegularisedLeastSquares
    assert (part.l2, part.l1, part.nonnegative) == (0.3, 0.1, True)
    torch.testing.assert_close(part._sqrt_w, problem._sqrt_w, rtol=0, atol=1e-15)
    assert torch.equal(part.b, B[:, [1]])


def test_defaults_without_a_process_group_are_rank_0_of_1():
    problem = gdla.LinearSystem(matrix(4), torch.randn(4, 3, dtype=torch.float64))
    assert sharding.shard_indices(problem) == [0, 1, 2]
    part = sharding.shard(problem)
    torch.testing.assert_close(sharding.assemble(problem, [gdla.solve(part)]), problem.reference(), rtol=0, atol=1e-9)
    with pytest.raises(RuntimeError, match="initialised torch.distributed"):
        sharding.gather(problem, part)


def test_any_problem_with_the_hooks_shards():
    class Columns(gdla.Problem):
        """x_j = c_j, one unknown per column: a toy problem that splits."""

        def __init__(self, c):
            super().__init__()
            self.register_buffer("c", c)
            self.x = torch.nn.Parameter(torch.zeros_like(c))

        def forward(self):
            return (self.x - self.c).square().sum()

        @property
        def solution(self):
            return self.x.detach()

        def residuals(self):
            return (self.x - self.c).norm().detach()

        @property
        def num_pieces(self):
            return self.c.shape[-1]

        def split(self, indices):
            return Columns(self.c[..., indices])

        def join(self, pieces):
            return pieces * 1.0

    c = torch.arange(12.0).reshape(2, 6)
    problem = Columns(c)
    parts = [sharding.shard(problem, rank, 4) for rank in range(4)]
    assert [p.num_pieces for p in parts] == [2, 2, 1, 1]
    assert torch.equal(sharding.assemble(problem, [p.c for p in parts]), c)
    with pytest.raises(ValueError, match="does not split into independent pieces"):
        sharding.shard(gdla.SVD(torch.rand(3, 3)), 0, 2)
