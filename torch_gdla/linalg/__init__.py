"""``gdla.linalg``: torch.linalg-shaped functions, solved iteratively, differentiable, warm-startable.

    x = gdla.linalg.solve(A, b)                 # like torch.linalg.solve (batched leading dims)
    x = gdla.linalg.solve(A, b, init=x_prev)    # warm start
    x = gdla.linalg.lstsq(A, b)                 # minimum-norm least squares, any shape and rank
    X = gdla.linalg.inv(M)
    U, S, V = gdla.linalg.svd(M, rank=k)        # top-k, orthonormal factors
    L, V = gdla.linalg.eigh(M, k=3)             # top-3 eigenpairs of a symmetric M (largest=False: bottom)
    X = gdla.linalg.sqrtm(M)                    # principal square root of an SPD M (inverse=True: M^-1/2)
    x, result = gdla.linalg.solve_ex(A, b)      # ... and the Result (status, steps, residual)
    x = gdla.linalg.minimize(fn, x0, params=(theta,))   # argmin_x fn(x, theta), differentiable in theta

Every function runs the Lightning-free engine: no Lightning import, no files, no printing.
Gradients come by implicit differentiation (an adjoint solve in backward, or closed forms), so
backward memory does not grow with the iterations.  With ``check=True`` (the default of the
plain functions) a run that does not converge raises :class:`~torch_gdla.errors.NotConvergedError`
with the reason; the ``_ex`` variants return the Result instead.
"""
from .decompositions import SVDResult, svd, svd_ex
from .optimize import minimize, minimize_ex
from .solvers import inv, inv_ex, lstsq, lstsq_ex, solve, solve_ex
from .spectral import eigh, eigh_ex, sqrtm, sqrtm_ex

__all__ = ["solve", "solve_ex", "lstsq", "lstsq_ex", "inv", "inv_ex", "svd", "svd_ex", "SVDResult", "minimize",
           "minimize_ex", "eigh", "eigh_ex", "sqrtm", "sqrtm_ex"]
