"""``minimize``: ``x* = argmin_x fn(x, *params)``, differentiable in the params.

Backward by implicit differentiation of the stationarity condition ∇ₓf(x*, θ) = 0: solve
``H v = x̄`` (H the Hessian ∇²ₓf at x*, applied by Hessian-vector products — autograd's
double backward — in conjugate gradient), then ``θ̄ = −∂θ(∇ₓf(x*, θ) · v)``.  Backward memory
holds x* and the params, whatever the number of forward iterations.  H must be positive definite
at x* (a strict local minimum); conjugate gradient stops with a clear error where it is not.
"""
from __future__ import annotations

from typing import Any, Callable, Optional, Sequence

import torch
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from ..operators import LinearOperator
from ..problems.minimize import Minimize
from ..problems.spd import SPDLinearSystem
from ..result import Result
from ._run import Options, run, wants_grad

Objective = Callable[..., Tensor]


def _objective(fn: Any, params: Sequence[Tensor]) -> tuple[Objective, tuple[Tensor, ...]]:
    """(f(x, *params), params): an nn.Module's own parameters are its params when none are given."""
    if isinstance(fn, nn.Module) and not params:
        names = [name for name, _ in fn.named_parameters()]
        module = fn

        def call(x: Tensor, *values: Tensor) -> Tensor:
            return torch.func.functional_call(module, dict(zip(names, values)), (x,))

        return call, tuple(p for _, p in fn.named_parameters())
    return fn, tuple(params)


class _Minimize(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor, fn: Objective, options: Options, *params: Tensor) -> Tensor:
        ctx.save_for_backward(x, *params)
        ctx.fn, ctx.options = fn, options
        return x.clone()

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: Tensor) -> tuple[Any, ...]:
        x, *params = ctx.saved_tensors
        with torch.enable_grad():
            point = x.detach().requires_grad_(True)
            thetas = [p.detach().requires_grad_(p.requires_grad) for p in params]
            (gradient,) = torch.autograd.grad(ctx.fn(point, *thetas).reshape(()), point, create_graph=True)

            def hessian_times(v: Tensor) -> Tensor:
                (hv,) = torch.autograd.grad(gradient, point, v.reshape(point.shape), retain_graph=True)
                return hv.reshape(v.shape)

            n = point.numel()
            hessian = LinearOperator((n, n), hessian_times, dtype=x.dtype, device=x.device, symmetric=True)
            v = run(SPDLinearSystem(hessian, grad.reshape(-1)), ctx.options.adjoint(), "minimize (backward)").solution
            wanted = [t for t in thetas if t.requires_grad]
            grads = iter(torch.autograd.grad((gradient * v.reshape(point.shape)).sum(), wanted, allow_unused=True)
                         if wanted else [])
        theta_grads = [None if not t.requires_grad else _negate(next(grads)) for t in thetas]
        return (None, None, None, *theta_grads)


def _negate(grad: Optional[Tensor]) -> Optional[Tensor]:
    return None if grad is None else -grad


def minimize_ex(fn: Objective, x0: Any, params: Sequence[Tensor] = (), *, optimizer: Any = None,
                tol: Optional[float] = None, residual_tol: Optional[float] = None, rtol: Optional[float] = None,
                max_steps: Optional[int] = None, check: bool = False) -> tuple[Tensor, Result]:
    """:func:`minimize` that also returns the :class:`~torch_gdla.Result` (``check=False`` by default)."""
    objective, params = _objective(fn, params)
    options = Options(optimizer, tol, residual_tol, rtol, max_steps, check)
    fixed = tuple(p.detach() for p in params)  # the minimisation never touches the params' .grad
    start = x0.detach() if isinstance(x0, Tensor) else x0
    problem = Minimize(lambda x: objective(x, *fixed), start)
    result = run(problem, options, "minimize")
    x = result.solution
    if wants_grad(*params):
        x = _Minimize.apply(x, objective, options, *params)
    return x, result


def minimize(fn: Objective, x0: Any, params: Sequence[Tensor] = (), **options: Any) -> Tensor:
    """``argmin_x fn(x, *params)`` from ``x0`` (the problem's default method; any
    ``optimizer=`` factory), differentiable in ``params`` — the bilevel case, e.g. a ridge
    weight tuned by the gradient of a validation loss.  An ``nn.Module`` fn without params is
    differentiated in its own parameters (``fn(x)`` through ``torch.func.functional_call``).
    Options as for :func:`~torch_gdla.linalg.solve`; the stopping rule is the problem's
    stationarity measure (see :class:`~torch_gdla.Minimize`)."""
    options.setdefault("check", True)
    return minimize_ex(fn, x0, params, **options)[0]
