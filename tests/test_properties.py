"""Property tests (hypothesis) over random problems of every kind: shapes, dtypes, condition
numbers, batch shapes, loss sides, truncated ranks (issue 6).

Checked for every generated problem:

* **converged is honest**: whenever ``result.converged``, the problem's own residual of every
  batch member is ≤ the tolerance the run used;
* **agreement with torch.linalg** within a bound derived from the condition number (below);
* **batched = one by one**: a batch of problems solved together gives each member's solo answer.

Error bounds (``κ = cond₂``, ``τ`` the residual tolerance met, ``ε`` the dtype's machine epsilon,
``ρ = 64·n·ε`` for rounding in computing the residual and the reference):

* Inverse: ``R = XM − I`` (left) gives ``X − M⁻¹ = R M⁻¹``, so
  ``‖X − M⁻¹‖_F ≤ ‖R‖_F ‖M⁻¹‖₂ ≤ √n·τ·‖M⁻¹‖_F`` (``residual = ‖R‖_F/√n``; "right" and "both" the
  same with ``M⁻¹R``).  Bound used: ``rel. error ≤ √n·τ + κ·ρ`` (no κ on τ: the inverse's
  relative error is bounded by its residual; κ enters through rounding only).
* Square system: ``x − x* = A⁻¹(Ax − b)`` and ``‖b‖ ≤ ‖A‖‖x*‖`` give ``rel. error ≤ κ·τ``.
* Least squares, over- or underdetermined with full rank: the residual is the normal-equation
  one ``‖Aᵀ(Ax − b)‖/‖Aᵀb‖``; ``x − x* = (AᵀA)⁺Aᵀ(Ax − b)`` (underdetermined: both in the row
  space of A, since the start is 0) gives ``rel. error ≤ κ²·τ`` —
  ``problem.condition_number()`` is κ² there.
  Bound used for systems: ``rel. error ≤ 2·K·(τ + ρ)``, ``K = problem.condition_number()``.
* SVD: with orthonormal U, V, Mirsky's theorem gives ``|sᵢ − σᵢ| ≤ τ·‖M‖_F`` (full rank); for a
  truncated rank the residual bounds each sᵢ's distance to a singular value the same way.

Run the larger profile by hand (see tests/conftest.py)::

    HYPOTHESIS_PROFILE=thorough python -m pytest tests/test_properties.py --hypothesis-show-statistics
"""
import functools
import math

import pytest
import torch
from hypothesis import event, given, note, settings
from hypothesis import strategies as st

import torch_gdla as gdla

EXAMPLES = settings.default.max_examples  # of the loaded profile: "ci" (default) or "thorough"
MAX_STEPS = 2000
TOLERANCES = {torch.float64: [1e-6, 1e-8, 1e-10], torch.float32: [1e-3, 1e-4]}
MAX_LOG_COND = {torch.float64: 3.0, torch.float32: 2.0}  # cond in [1, 1e3] (f64) / [1, 1e2] (f32)


def rounding(n: int, dtype: torch.dtype) -> float:
    return 64 * n * torch.finfo(dtype).eps


def conditioned(seed: int, batch: tuple, m: int, n: int, log_cond: float, dtype: torch.dtype) -> torch.Tensor:
    """Random (batch..., m, n) matrices with singular values spaced geometrically from s to s/cond,
    s a random scale in [0.5, 2] (so κ₂ = cond exactly, up to rounding)."""
    generator = torch.Generator().manual_seed(seed)
    k = min(m, n)
    U, _ = torch.linalg.qr(torch.randn(*batch, m, k, generator=generator, dtype=torch.float64))
    V, _ = torch.linalg.qr(torch.randn(*batch, n, k, generator=generator, dtype=torch.float64))
    cond = 10.0 ** log_cond if k > 1 else 1.0
    sigma = cond ** (-torch.arange(k, dtype=torch.float64) / max(k - 1, 1))
    scale = 0.5 + 1.5 * torch.rand(*batch, 1, generator=generator, dtype=torch.float64)
    return ((U * (scale * sigma).unsqueeze(-2)) @ V.mT).to(dtype)


dtypes = st.sampled_from([torch.float32, torch.float64])
batch_shapes = st.lists(st.integers(1, 3), min_size=0, max_size=2).map(tuple)


def iterate(problem, criteria: gdla.Criteria, max_steps: int = MAX_STEPS) -> gdla.Result:
    """The solver loop without Lightning (what gdla.solve runs, block by block)."""
    iteration = gdla.Iteration(problem, problem.default_optimizer(), criteria, max_steps=max_steps)
    iteration.run(max_steps)
    return iteration.finish()


def check_honest(result: gdla.Result, problem, tol: float) -> None:
    """converged ⇒ every member's own residual meets the tolerance; never on a non-finite loss."""
    event(f"status: {result.status.name}")
    if result.converged:
        residuals = problem.residuals()
        assert float(residuals.max()) <= tol, (result, residuals)
        assert math.isfinite(result.loss)
    if result.member_converged is not None:
        met = problem.residuals() <= tol
        assert not bool((result.member_converged & ~met).any())  # no member claimed without its residual
        if result.converged:
            assert bool(result.member_converged.all())


def relative_error(x: torch.Tensor, reference: torch.Tensor, batch_dims: int) -> torch.Tensor:
    dims = tuple(range(batch_dims, x.dim()))
    return torch.linalg.vector_norm(x - reference, dim=dims) / torch.linalg.vector_norm(reference, dim=dims)


# --- matrix inverse ------------------------------------------------------------------------------------


@st.composite
def inverse_problems(draw, min_batch_dims=0):
    dtype = draw(dtypes)
    n = draw(st.integers(1, 6))
    batch = draw(st.lists(st.integers(1, 3), min_size=min_batch_dims, max_size=2).map(tuple))
    log_cond = draw(st.floats(0.0, MAX_LOG_COND[dtype]))
    seed = draw(st.integers(0, 2**31 - 1))
    side = draw(st.sampled_from(["left", "right", "both"]))
    tol = draw(st.sampled_from(TOLERANCES[dtype]))
    M = conditioned(seed, batch, n, n, log_cond, dtype)
    note(f"dtype={dtype} n={n} batch={batch} cond=1e{log_cond:.2f} side={side} tol={tol}")
    return M, side, seed, tol


@settings(max_examples=3 * EXAMPLES)
@given(inverse_problems())
def test_inverse_converged_is_honest_and_matches_torch_linalg(case):
    M, side, seed, tol = case
    problem = gdla.MatrixInverse(M, side=side, seed=seed % 1000)
    result = iterate(problem, gdla.Criteria(residual_tol=tol))
    check_honest(result, problem, tol)
    # Tolerances are above the precision floor (κ·ε ≤ 1e-3·τ), so a run must converge.
    assert result.converged, result
    n, batch_dims = M.shape[-1], M.dim() - 2
    reference = torch.linalg.inv(M.double())
    cond = torch.linalg.cond(M.double())
    bound = math.sqrt(n) * tol + cond * rounding(n, M.dtype)
    error = relative_error(result.solution.double(), reference, batch_dims)
    assert bool((error <= bound).all()), (error, bound)


# --- linear systems and least squares -----------------------------------------------------------------


@st.composite
def linear_systems(draw):
    dtype = draw(dtypes)
    shape = draw(st.sampled_from(["square", "over", "under"]))
    n = draw(st.integers(1, 6))
    m = {"square": n, "over": n + draw(st.integers(1, 3)), "under": max(1, n - draw(st.integers(1, 3)))}[shape]
    if shape == "under" and m == n:
        n += 1
    batch = draw(batch_shapes)
    # Least squares works on AᵀA (cond²): keep cond² within the dtype's range.
    max_log = MAX_LOG_COND[dtype] / (1 if shape == "square" else 2)
    log_cond = draw(st.floats(0.0, max_log))
    seed = draw(st.integers(0, 2**31 - 1))
    k = draw(st.sampled_from([None, 1, 2, 3]))  # None: one right-hand side as a vector
    tol = draw(st.sampled_from(TOLERANCES[dtype]))
    A = conditioned(seed, batch, m, n, log_cond, dtype)
    generator = torch.Generator().manual_seed(seed + 1)
    b = torch.randn(*batch, m, *(() if k is None else (k,)), generator=generator, dtype=torch.float64).to(dtype)
    note(f"dtype={dtype} A={tuple(A.shape)} b={tuple(b.shape)} cond=1e{log_cond:.2f} tol={tol}")
    return A, b, tol


def linalg_reference(A: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """solve() for square A, else the minimum-norm least-squares solution pinv(A) b (float64)."""
    A, b = A.double(), b.double()
    vector = b.dim() == A.dim() - 1
    columns = b.unsqueeze(-1) if vector else b
    x = torch.linalg.solve(A, columns) if A.shape[-1] == A.shape[-2] else torch.linalg.pinv(A) @ columns
    return x.squeeze(-1) if vector else x


def check_system(problem, result, A, b, tol):
    check_honest(result, problem, tol)
    assert result.converged, result
    K = problem.condition_number()
    n = A.shape[-1]
    bound = 2 * K * (tol + rounding(n, A.dtype))
    error = relative_error(result.solution.double(), linalg_reference(A, b), A.dim() - 2)
    assert bool((error <= bound).all()), (error, bound)


@settings(max_examples=3 * EXAMPLES)
@given(linear_systems())
def test_linear_system_converged_is_honest_and_matches_torch_linalg(case):
    A, b, tol = case
    problem = gdla.LinearSystem(A, b)
    result = iterate(problem, gdla.Criteria(residual_tol=tol))
    check_system(problem, result, A, b, tol)


@settings(max_examples=max(3, EXAMPLES // 2))
@given(linear_systems())
def test_linear_system_through_solve(case):
    """The same property through gdla.solve (Lightning), with the default tolerance."""
    A, b, _ = case
    problem = gdla.LinearSystem(A, b)
    result = gdla.solve(problem, max_steps=MAX_STEPS)
    tol = gdla.engine.DEFAULT_RESIDUAL_TOL[A.dtype]
    check_system(problem, result, A, b, tol)


# --- batched = one by one -------------------------------------------------------------------------------


@st.composite
def batches(draw):
    dtype = draw(dtypes)
    kind = draw(st.sampled_from(["inverse", "system"]))
    n = draw(st.integers(1, 5))
    m = n if kind == "inverse" else draw(st.integers(1, 6))
    size = draw(st.integers(2, 3))
    log_cond = draw(st.floats(0.0, MAX_LOG_COND[dtype] / 2))
    seed = draw(st.integers(0, 2**31 - 1))
    side = draw(st.sampled_from(["left", "right", "both"]))
    steps = draw(st.integers(1, 3 * n))
    A = conditioned(seed, (size,), m, n, log_cond, dtype)
    b = torch.randn(size, m, generator=torch.Generator().manual_seed(seed + 1), dtype=torch.float64).to(dtype)
    note(f"{kind} dtype={dtype} A={tuple(A.shape)} side={side} steps={steps}")
    return kind, A, b, side, steps


def build(kind, A, b, side, init=None):
    if kind == "inverse":
        return gdla.MatrixInverse(A, side=side, init=init)
    return gdla.LinearSystem(A, b, init=init)


@settings(max_examples=2 * EXAMPLES)
@given(batches())
def test_batched_steps_equal_one_by_one(case):
    """A fixed number of plain gradient steps (tol=0, SGD with a step below 1/L, so every
    member's loss decreases): each member of the batch follows its solo iterates."""
    kind, A, b, side, steps = case
    sgd = functools.partial(torch.optim.SGD, lr=0.05)
    batched = build(kind, A, b, side)
    starts = batched.solution.clone()
    together = gdla.Iteration(batched, sgd(batched.parameters()), gdla.Criteria(tol=0), max_steps=steps)
    together.run(steps)
    result = together.finish()
    assert result.steps == steps
    atol = 1e2 * torch.finfo(A.dtype).eps
    for i in range(A.shape[0]):
        single = build(kind, A[i], b[i], side, init=starts[i])
        alone = gdla.Iteration(single, sgd(single.parameters()), gdla.Criteria(tol=0), max_steps=steps)
        alone.run(steps)
        solo = alone.finish()
        assert torch.allclose(result.solution[i], solo.solution, rtol=atol, atol=atol), (
            i, (result.solution[i] - solo.solution).abs().max())
        assert result.residuals[i].item() == pytest.approx(solo.residual, rel=1e-3, abs=atol)


@settings(max_examples=2 * EXAMPLES)
@given(batches())
def test_batched_solve_agrees_with_one_by_one(case):
    """Solved to a tolerance with the default optimizer (exact line search per member), the
    batch and each solo run both converge, and agree within twice the error bound.  (Not to
    rounding: the run keeps the point of lowest *summed* loss, and stops when the worst member
    converges, so a member may end at another iterate than when solved alone.)"""
    kind, A, b, side, _ = case
    tol = TOLERANCES[A.dtype][0]
    batched = build(kind, A, b, side)
    starts = batched.solution.clone()
    together = iterate(batched, gdla.Criteria(residual_tol=tol))
    check_honest(together, batched, tol)
    assert together.converged, together
    for i in range(A.shape[0]):
        single = build(kind, A[i], b[i], side, init=starts[i])
        alone = iterate(single, gdla.Criteria(residual_tol=tol))
        assert alone.converged, alone
        K = single.condition_number()
        n = A.shape[-1]
        bound = (math.sqrt(n) * tol + K * rounding(n, A.dtype)) if kind == "inverse" else 2 * K * (tol + rounding(n, A.dtype))
        reference = linalg_reference(A[i], b[i]) if kind == "system" else torch.linalg.inv(A[i].double())
        scale = float(torch.linalg.vector_norm(reference))
        difference = float(torch.linalg.vector_norm(together.solution[i].double() - alone.solution.double()))
        assert difference <= 2 * bound * scale, (i, difference / scale, bound)


@settings(max_examples=EXAMPLES)
@given(inverse_problems(min_batch_dims=1))
def test_batched_run_stops_only_when_every_member_converged(case):
    M, side, seed, tol = case
    problem = gdla.MatrixInverse(M, side=side, seed=seed % 1000)
    result = iterate(problem, gdla.Criteria(residual_tol=tol))
    check_honest(result, problem, tol)
    assert result.converged
    assert bool(result.member_converged.all())
    assert bool((problem.residuals() <= tol).all())


# --- SVD ---------------------------------------------------------------------------------------------------


@st.composite
def svd_problems(draw):
    m = draw(st.integers(1, 4))
    n = draw(st.integers(1, 4))
    full = min(m, n)
    rank = draw(st.one_of(st.none(), st.integers(1, full)))
    seed = draw(st.integers(0, 2**31 - 1))
    generator = torch.Generator().manual_seed(seed)
    U, _ = torch.linalg.qr(torch.randn(m, full, generator=generator, dtype=torch.float64))
    V, _ = torch.linalg.qr(torch.randn(n, full, generator=generator, dtype=torch.float64))
    # distinct singular values (gaps ≥ 20 %), so the top-k triplets are well defined
    sigma = 2.0 * 0.7 ** torch.arange(full, dtype=torch.float64)
    M = (U * sigma) @ V.mT
    tol = draw(st.sampled_from([1e-6, 1e-8]))
    note(f"M={tuple(M.shape)} rank={rank} tol={tol}")
    return M, rank, tol, sigma


@pytest.mark.skipif(not hasattr(gdla, "SVD"), reason="gdla.SVD (problems/svd.py) is not available in this checkout")
@settings(max_examples=max(3, EXAMPLES // 10))
@given(svd_problems())
def test_svd_converged_is_honest_and_matches_svdvals(case):
    M, rank, tol, sigma = case
    problem = gdla.SVD(M, rank=rank)
    result = iterate(problem, gdla.Criteria(residual_tol=tol))
    check_honest(result, problem, tol)
    assert result.converged, result
    k = len(sigma) if rank is None else rank
    S = result.solution.S
    assert S.shape[-1] == k
    bound = tol * float(torch.linalg.matrix_norm(M)) + rounding(max(M.shape), M.dtype)
    # Mirsky (full) / residual bound (truncated): each sᵢ is within `bound` of σᵢ, the top k.
    assert torch.allclose(S, sigma[:k], rtol=0, atol=bound), (S, sigma)
    U, V = result.solution.U, result.solution.V
    assert torch.allclose(U.mT @ U, torch.eye(k, dtype=M.dtype), atol=1e-10)
    assert torch.allclose(V.mT @ V, torch.eye(k, dtype=M.dtype), atol=1e-10)


# -- scale: the tuning-free default does not depend on the units of the data -------------------------
SCALE_EXPONENTS = {torch.float32: (-10, 4), torch.float64: (-50, 50)}


@settings(max_examples=2 * EXAMPLES)
@given(st.integers(0, 10_000), dtypes, st.data())
def test_the_default_inverse_is_scale_invariant(seed, dtype, data):
    """A well-conditioned (κ ≤ 3) inverse converges with the default method whatever the scale
    of M, across the range the dtype's losses can represent: the same residual rule, met."""
    low, high = SCALE_EXPONENTS[dtype]
    exponent = data.draw(st.integers(low, high), label="log10 scale")
    M = conditioned(seed, (), 4, 4, math.log10(3.0), torch.float64) * 10.0 ** exponent
    problem = gdla.MatrixInverse(M.to(dtype))
    result = iterate(problem, gdla.Criteria())
    note(f"{result}")
    assert result.converged, result.reason
    check_honest(result, problem, gdla.engine.DEFAULT_RESIDUAL_TOL[dtype])


@settings(max_examples=EXAMPLES)
@given(st.integers(0, 10_000), st.integers(5, 40))
def test_a_stochastic_tol_is_judged_on_all_the_data(seed, rows):
    """Mini-batch losses below tol do not end a run unless the loss over all rows agrees."""
    import functools as ft

    generator = torch.Generator().manual_seed(seed)
    A = torch.randn(rows * 10, 3, generator=generator, dtype=torch.float64)
    b = A @ torch.randn(3, generator=generator, dtype=torch.float64) + 0.3 * torch.randn(rows * 10, generator=generator,
                                                                                       dtype=torch.float64)
    A[:rows], b[:rows] = 0, 0  # a first batch that the zero start fits exactly
    problem = gdla.StreamedLeastSquares(A, b, batch_size=rows, shuffle=False)
    tol = 0.5 * float(problem.full_loss())  # met somewhere on the way, not at the start
    result = gdla.solve(problem, ft.partial(torch.optim.SGD, lr=0.05), tol=tol, max_steps=None, max_epochs=30)
    if result.status is gdla.Status.TOL:
        assert float(problem.full_loss()) <= tol and result.steps > 1
    assert result.loss == pytest.approx(float(problem.full_loss()), rel=1e-12)
