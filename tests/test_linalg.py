"""gdla.linalg: torch.linalg-shaped, iterative, differentiable by implicit differentiation.

Gradients are checked against torch.linalg's own (float64, relative error ≤ 1e-6) and by
gradcheck; backward memory must not grow with the forward iterations; a run that does not
converge raises; nothing imports Lightning."""
from __future__ import annotations

import subprocess
import sys

import pytest
import torch

import torch_gdla as gdla

F64 = torch.float64
TIGHT = {"residual_tol": 1e-13}


def _matrix(n: int, seed: int = 0, dtype: torch.dtype = F64, batch: tuple = ()) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(*batch, n, n, generator=g, dtype=F64) + n * torch.eye(n, dtype=F64)).to(dtype)


def _rand(*shape: int, seed: int = 1, dtype: torch.dtype = F64) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=F64).to(dtype)


def _grads(fn, *inputs: torch.Tensor, weight_seed: int = 7) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """fn's output and the gradients of a fixed random projection of it."""
    leaves = [t.detach().clone().requires_grad_(True) for t in inputs]
    out = fn(*leaves)
    outs = out if isinstance(out, tuple) else (out,)
    weights = [_rand(*o.shape, seed=weight_seed + i) for i, o in enumerate(outs)]
    sum(((o * w).sum() for o, w in zip(outs, weights))).backward()
    return outs, [leaf.grad for leaf in leaves]


def _close(ours: list[torch.Tensor], theirs: list[torch.Tensor], rel: float = 1e-6) -> None:
    for a, b in zip(ours, theirs):
        assert float((a - b).norm() / b.norm()) <= rel, (a, b)


@pytest.mark.parametrize("batch", [(), (3,)])
@pytest.mark.parametrize("rhs", ["vector", "matrix"])
def test_solve_matches_torch_and_its_gradients(batch, rhs):
    A = _matrix(6, batch=batch)
    b = _rand(*batch, 6) if rhs == "vector" else _rand(*batch, 6, 2)
    (x,), ours = _grads(lambda A, b: gdla.linalg.solve(A, b, **TIGHT), A, b)
    (y,), theirs = _grads(torch.linalg.solve, A, b)
    _close([x], [y], 1e-10)
    _close(ours, theirs)


def test_solve_spd_and_sparse_and_operator_gradients_reach_b():
    A = _matrix(6)
    A = A @ A.mT
    b = _rand(6)
    (_,), ours = _grads(lambda b: gdla.linalg.solve(A, b, assume="spd", **TIGHT), b)
    (_,), theirs = _grads(lambda b: torch.linalg.solve(A, b), b)
    _close(ours, theirs)
    for operand in (A.to_sparse_csr(), gdla.aslinearoperator(A)):
        (_,), grads = _grads(lambda b: gdla.linalg.solve(operand, b, **TIGHT), b)
        _close(grads, theirs)


@pytest.mark.parametrize("shape", [(9, 4), (4, 9)])
def test_lstsq_matches_the_pseudo_inverse_and_its_gradients(shape):
    A, b = _rand(*shape, seed=2), _rand(shape[0], seed=3)
    (x,), ours = _grads(lambda A, b: gdla.linalg.lstsq(A, b, **TIGHT), A, b)
    (y,), theirs = _grads(lambda A, b: torch.linalg.pinv(A) @ b, A, b)
    _close([x], [y], 1e-9)
    _close(ours, theirs)


def test_lstsq_rank_deficient_is_the_minimum_norm_solution_with_its_gradient():
    A = _rand(8, 3, seed=4) @ _rand(3, 6, seed=5)  # rank 3
    b = _rand(8, seed=6)
    (x,), ours = _grads(lambda A, b: gdla.linalg.lstsq(A, b, **TIGHT), A, b)
    (y,), theirs = _grads(lambda A, b: torch.linalg.pinv(A, rtol=1e-10) @ b, A, b)
    _close([x], [y], 1e-8)
    _close(ours, theirs, 1e-5)


@pytest.mark.parametrize("assume", [None, "spd"])
def test_inv_matches_torch_and_its_gradient(assume):
    M = _matrix(5, batch=(2,))
    if assume:
        M = M @ M.mT
    (X,), ours = _grads(lambda M: gdla.linalg.inv(M, assume=assume, **TIGHT), M)
    (Y,), theirs = _grads(torch.linalg.inv, M)
    _close([X], [Y], 1e-10)
    _close(ours, theirs)


def _torch_svd(k: int):
    def svd(M):
        U, S, Vh = torch.linalg.svd(M, full_matrices=False)
        U, S, V = U[..., :k], S[..., :k], Vh.mT[..., :k]
        peak = U.gather(-2, U.detach().abs().argmax(dim=-2, keepdim=True))  # the same sign convention
        sign = torch.where(peak < 0, -1.0, 1.0).to(U.dtype)
        return U * sign, S, V * sign
    return svd


@pytest.mark.parametrize("shape, k", [((7, 5), None), ((5, 7), None), ((9, 6), 2), ((6, 9), 3)])
def test_svd_factors_and_their_gradients_match_torch_truncated_too(shape, k):
    M = _rand(*shape, seed=8)
    rank = k or min(shape)
    ours_out, ours = _grads(lambda M: tuple(gdla.linalg.svd(M, rank=k)), M)
    theirs_out, theirs = _grads(_torch_svd(rank), M)
    _close(list(ours_out), list(theirs_out), 1e-6)
    _close(ours, theirs, 1e-6)


def test_minimize_is_differentiable_in_its_params_the_bilevel_case():
    A, b = _rand(20, 5, seed=9), _rand(20, seed=10)
    lam = torch.tensor(0.7, dtype=F64)

    def ridge(x, lam):
        return (A @ x - b).square().sum() + lam * x.square().sum()

    # The forward's accuracy bounds the gradient's: a loss whose minimum is not zero resolves
    # stationarity only to about √eps relative (loss differences vanish below it), so 1e-7 here.
    (x,), ours = _grads(lambda lam: gdla.linalg.minimize(ridge, torch.zeros(5, dtype=F64), (lam,), residual_tol=1e-7),
                        lam)
    (y,), theirs = _grads(lambda lam: torch.linalg.solve(A.T @ A + lam * torch.eye(5, dtype=F64), A.T @ b), lam)
    _close([x], [y], 1e-6)
    _close(ours, theirs, 1e-5)


@pytest.mark.parametrize("fn, make", [
    (lambda A, b: gdla.linalg.solve(A, b, **TIGHT), lambda: (_matrix(4), _rand(4))),
    (lambda A, b: gdla.linalg.lstsq(A, b, **TIGHT), lambda: (_rand(6, 3, seed=11), _rand(6, seed=12))),
    (lambda M: gdla.linalg.inv(M, **TIGHT), lambda: (_matrix(4),)),
])
def test_gradcheck(fn, make):
    inputs = tuple(t.requires_grad_(True) for t in make())
    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-6, rtol=1e-4)


def test_float32_follows_the_input():
    A, b = _matrix(5, dtype=torch.float32), _rand(5, dtype=torch.float32).requires_grad_(True)
    x = gdla.linalg.solve(A, b)
    assert x.dtype == torch.float32
    assert torch.allclose(x, torch.linalg.solve(A, b.detach()), rtol=1e-4, atol=1e-5)
    x.sum().backward()
    assert b.grad.dtype == torch.float32


def test_a_run_that_does_not_converge_raises_a_clear_error():
    with pytest.raises(gdla.errors.NotConvergedError, match=r"gdla.linalg.solve did not converge: max_steps reached"):
        gdla.linalg.solve(_matrix(30), _rand(30), max_steps=2)
    x, result = gdla.linalg.solve_ex(_matrix(30), _rand(30), max_steps=2)  # _ex: the result says it
    assert not result.converged and result.steps == 2 and x.shape == (30,)
    with pytest.raises(ValueError, match="needs a square A.*lstsq"):
        gdla.linalg.solve(_rand(4, 3), _rand(4))


def test_warm_start_needs_fewer_iterations():
    Q, _ = torch.linalg.qr(_rand(60, 60, seed=13))
    A, b = (Q * torch.logspace(0, 3, 60, dtype=F64)) @ Q.T, _rand(60)
    x = gdla.linalg.solve(A, b)
    moved = A + 1e-6 * (A @ _rand(60, 60, seed=14) @ A.T) / 1e3  # a small change of a hard matrix
    _, warm = gdla.linalg.solve_ex(moved, b, init=x)
    _, cold = gdla.linalg.solve_ex(moved, b)
    assert warm.converged and cold.converged and warm.steps * 2 <= cold.steps, (warm.steps, cold.steps)


def test_backward_memory_does_not_grow_with_the_iterations():
    # The graph of a solve is one node that saves its answer, whatever the iteration count.
    easy, hard = torch.eye(40, dtype=F64) * 2, _matrix(40) @ _matrix(40, seed=3).mT
    counts = []
    for A in (easy, hard):
        A = A.requires_grad_(True)
        x, result = gdla.linalg.solve_ex(A, _rand(40).requires_grad_(True), check=True)
        node = x.grad_fn
        counts.append((result.steps, len(node.saved_tensors), len(node.next_functions)))
    (easy_steps, *easy_graph), (hard_steps, *hard_graph) = counts
    assert hard_steps >= 10 * easy_steps and easy_graph == hard_graph and easy_graph[0] == 1  # one saved tensor


def test_double_backward_is_refused():
    A = _matrix(4).requires_grad_(True)
    x = gdla.linalg.solve(A, _rand(4))
    (grad,) = torch.autograd.grad(x.sum(), A, create_graph=True)
    with pytest.raises(RuntimeError, match="once_differentiable|does not require grad|second time"):
        grad.sum().backward()


def test_solve_problem_results_carry_gradients_too():
    A, b = _matrix(5).requires_grad_(True), _rand(5).requires_grad_(True)
    result = gdla.solve(gdla.LinearSystem(A, b))
    result.solution.sum().backward()
    A2, b2 = A.detach().clone().requires_grad_(True), b.detach().clone().requires_grad_(True)
    torch.linalg.solve(A2, b2).sum().backward()
    _close([A.grad, b.grad], [A2.grad, b2.grad], 1e-6)


def test_no_lightning_no_files_no_printing(tmp_path):
    code = ("import sys, torch, torch_gdla as gdla\n"
            "A = torch.eye(3, dtype=torch.float64) * 2\n"
            "gdla.linalg.solve(A, torch.ones(3, dtype=torch.float64), assume='spd')\n"
            "gdla.linalg.svd(A, rank=2); gdla.linalg.inv(A)\n"
            "assert 'pytorch_lightning' not in sys.modules and 'torchmetrics' not in sys.modules\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "" and done.stderr == "" and list(tmp_path.iterdir()) == []
