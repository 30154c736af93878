# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Derivatives, minimisation and staged optimizers
#
# The gradients tutorial first computes derivatives with a deep-learning toolkit: to get f′ at
# many points at once, differentiate the *sum* `L = Σ f(xⱼ)`; each point's partial derivative is
# then f′(xⱼ).  It then minimises `x² + y² + 4` and the harder `x⁶ + y⁶ + z⁶ + w⁶ + 4`:
# plain SGD blows up on the sixth power, Adam converges, and three Adams switched by the
# relative change of the loss converge faster.
#
# This notebook retells both halves with `gdla.derivative`, `gdla.gradient`, `gdla.Minimize` and
# `gdla.optim.Staged`.

# %%
# %matplotlib inline
import functools

import matplotlib.pyplot as plt
import torch

import torch_gdla as gdla
from torch_gdla.optim import Staged
from torch_gdla.optim.staged import annealed_adam_stages

# %% [markdown]
# ## Derivatives of an elementwise function
#
# `gdla.derivative(f, x, order)` differentiates `f(x).sum()` (the tutorial's "loss = sum"
# trick), `order` times.  For f(x) = x⁶ + 4 the closed forms are 6x⁵, 30x⁴ and 120x³.


# %%
def f(t: torch.Tensor) -> torch.Tensor:
    return t**6 + 4


x = torch.linspace(-1.5, 1.5, 121, dtype=torch.float64)
derivatives = {order: gdla.derivative(f, x, order=order) for order in (1, 2, 3)}
closed_forms = {1: 6 * x**5, 2: 30 * x**4, 3: 120 * x**3}
for order in (1, 2, 3):
    error = float((derivatives[order] - closed_forms[order]).abs().max())
    print(f"order {order}: max |autograd − closed form| = {error:.1e}")
    assert error < 1e-10

# %%
fig, ax = plt.subplots(figsize=(7, 4))
ax.plot(x, f(x), label="f(x) = x⁶ + 4")
for order, name in [(1, "f′ = 6x⁵"), (2, "f″ = 30x⁴"), (3, "f‴ = 120x³")]:
    ax.plot(x, derivatives[order], label=f"gdla.derivative(f, x, order={order})  ({name})")
ax.set_ylim(-60, 60)
ax.set_xlabel("x")
ax.legend(fontsize=8)
ax.set_title("Derivatives by autograd")
plt.show()

# %% [markdown]
# `gdla.gradient(f, *xs)` gives the partial derivatives of a scalar function of several
# tensors: here of z = x·y⁵ at (3, 7), and of the sixth-power function of four variables.

# %%
print(gdla.gradient(lambda x, y: x * y**5, 3.0, 7.0))  # (∂z/∂x, ∂z/∂y) = (7⁵, 5·3·7⁴)

# The tutorial's start: std·(randn(4) + mean) with std = mean = 1, generator seed 0, float64.
generator = torch.Generator().manual_seed(0)
x0 = 1.0 * (torch.randn(4, generator=generator, dtype=torch.float64) + 1.0)
print("x0 =", x0)
print("∇f(x0) =", gdla.gradient(gdla.functions.sixth_power, x0), "  6·x0⁵ =", 6 * x0**5)

# %% [markdown]
# ## Minimising x⁶ + y⁶ + z⁶ + w⁶ + 4
#
# `gdla.Minimize("sixth_power", x0)` is the problem: its parameter is the point, its loss is
# f(x).  Converged means f(x) ≤ tol = 4 + 1e-6, within 1e-6 of the known minimum 4.

# %%
optimizers = {
    "SGD(lr 0.1)": functools.partial(torch.optim.SGD, lr=0.1),
    "Adam(lr 0.04, betas (0.5, 0.9))": functools.partial(torch.optim.Adam, lr=0.04, betas=(0.5, 0.9)),
    "Staged: three Adams": functools.partial(Staged, stages=annealed_adam_stages(0.04), every=10),
}
results = {}
for name, optimizer in optimizers.items():
    results[name] = gdla.solve(gdla.Minimize("sixth_power", x0=x0), optimizer, tol=4 + 1e-6, max_steps=10_000)
    result = results[name]
    print(f"{name:>32}: {result.status.name:<9} after {result.steps:>3} steps — {result.reason[:70]}")

# %%
fig, ax = plt.subplots(figsize=(7, 4))
for name, result in results.items():
    gap = result.history - 4
    steps = torch.arange(len(gap))
    finite = torch.isfinite(gap)
    ax.semilogy(
        steps[finite], gap[finite], marker="." if len(gap) < 10 else None, label=f"{name} ({result.status.name})"
    )
ax.axhline(1e-6, color="gray", linestyle=":", label="tol: 4 + 1e-6")
ax.set_ylim(1e-8, 1e4)  # SGD leaves the plot upwards: 5e10, 2e52, 7e259, then inf
ax.annotate("SGD: loss inf at step 4", xy=(4, 1e4), xytext=(30, 1e2), arrowprops={"arrowstyle": "->"})
ax.set_xlabel("iteration")
ax.set_ylabel("f(x) − 4")
ax.set_title("x⁶ + y⁶ + z⁶ + w⁶ + 4: SGD diverges, Adam converges, staged Adam is faster")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# ## The staged scheme, step by step
#
# `Staged` holds the three Adams of the tutorial over the same parameters.  Every 10 steps it
# measures the relative change |l₁ − l₂| / max(l₁, l₂); a step is taken by the first Adam
# (betas 0.5, 0.9) while the change is above 0.1, by the second (0.9, 0.95) while it is above
# 0.01, then by the third (0.9, 0.999).  Here it runs in the tutorial's own loop, so the active
# stage can be recorded at every step.

# %%
problem = gdla.Minimize("sixth_power", x0=x0)
optimizer = Staged(problem.parameters(), stages=annealed_adam_stages(0.04), every=10)
print(optimizer)


def closure() -> torch.Tensor:
    optimizer.zero_grad()
    loss = problem()
    loss.backward()
    return loss


losses, stages = [], []
while not losses or losses[-1] > 4 + 1e-6:
    losses.append(float(optimizer.step(closure)))
    stages.append(optimizer.stage)
print(f"f(x) ≤ 4 + 1e-6 after {len(losses) - 1} steps; x = {problem.solution}")

# %%
fig, ax = plt.subplots(figsize=(7, 4))
gap = torch.tensor(losses) - 4
stage = torch.tensor(stages)
for index, label in enumerate(["Adam betas (0.5, 0.9)", "Adam betas (0.9, 0.95)", "Adam betas (0.9, 0.999)"]):
    active = (stage == index).nonzero().flatten()
    ax.semilogy(active, gap[active], ".", label=f"stage {index}: {label}")
ax.set_xlabel("iteration")
ax.set_ylabel("f(x) − 4")
ax.set_title("Staged Adam: which optimizer took each step")
ax.legend(fontsize=8)
plt.show()

# %%
assert results["SGD(lr 0.1)"].status is gdla.Status.DIVERGED
assert results["Staged: three Adams"].steps < results["Adam(lr 0.04, betas (0.5, 0.9))"].steps
