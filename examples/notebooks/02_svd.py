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
# # The singular value decomposition by gradient descent
#
# The third part of the matrix-operations tutorial fits `M ≈ U S Vᵀ` by gradient descent:
# `torch.manual_seed(314)`, then `U = rand(m, n)`, `diag_sqrt = rand(n)`, `V = rand(n, n)`,
# `S = diag(diag_sqrt²)`, and the loss
# `mse(U S Vᵀ, M) + mse(UᵀU, I)/100 + mse(VVᵀ, I)/100`, trained with SGD(lr 0.9, momentum 0.9)
# in float32.  `gdla.SVD(M, method="penalty")` is exactly that recipe.
#
# It works on the tutorial's first matrix, and fails on harder ones.  The library's default,
# `method="orthogonal"`, keeps U and V orthonormal by construction, eliminates S in closed form
# and needs no penalty weight and no learning rate.

# %%
# %matplotlib inline
import functools

import matplotlib.pyplot as plt
import torch

import torch_gdla as gdla
from torch_gdla.matrices import Random

torch.set_printoptions(sci_mode=False, precision=4)
sgd = functools.partial(torch.optim.SGD, lr=0.9, momentum=0.9)

# %% [markdown]
# ## Three of the tutorial's matrices
#
# `Random(shape, seed)` is a seeded `torch.rand`: the seed-314 5×4 matrix works with the
# penalty recipe; the seed-317 4×3 and the seed-316 7×4 matrices do not.

# %%
matrices = {
    "seed 314, 5×4": Random([5, 4], seed=314).tensor(),
    "seed 317, 4×3": Random([4, 3], seed=317).tensor(),
    "seed 316, 7×4": Random([7, 4], seed=316).tensor(),
}
steps = {"seed 314, 5×4": 2500, "seed 317, 4×3": 1500, "seed 316, 7×4": 3000}
for name, M in matrices.items():
    print(f"{name}: singular values {torch.linalg.svdvals(M)}")

# %% [markdown]
# ## The tutorial's recipe: penalty loss and SGD
#
# `tol=0` makes every run take all its steps, as the tutorial's loop does.

# %%
penalty = {}
for name, M in matrices.items():
    svd = gdla.SVD(M, method="penalty")
    result = gdla.solve(svd, sgd, tol=0, max_steps=steps[name])
    penalty[name] = result
    print(f"{name}: loss {result.loss:.3g} after {result.steps} steps, S = {result.solution.S}")

# %%
fig, ax = plt.subplots(figsize=(7, 4))
for name, result in penalty.items():
    ax.semilogy(result.history, label=name)
ax.set_xlabel("iteration")
ax.set_ylabel("penalty loss")
ax.set_title("The tutorial's SVD recipe: SGD(0.9, momentum 0.9) on the penalty loss")
ax.legend()
plt.show()

# %% [markdown]
# What went wrong:
#
# * **seed 317, 4×3**: momentum drives one entry of `diag_sqrt` to 0, where its gradient
#   `2·diag_sqrt·∂L/∂S` vanishes, so that singular value is lost for good: the loss plateaus at
#   σ₃²/(mn), the energy of the lost triplet.
# * **seed 316, 7×4**: its two closest singular values (0.612 and 0.554) make the loss nearly
#   flat along the mixing of their vectors, and the 1/100 penalty tolerates columns that are not
#   orthogonal; the loss creeps down and those two values are wrong in the second decimal.

# %%
M = matrices["seed 317, 4×3"]
sigma = torch.linalg.svdvals(M.double())
print("plateau:", penalty["seed 317, 4×3"].loss, " σ₃²/(mn):", float(sigma[2] ** 2 / M.numel()))
U, S, V = penalty["seed 316, 7×4"].solution
print("seed 316: ‖UᵀU − I‖_F =", float(torch.linalg.matrix_norm(U.T @ U - torch.eye(4))))

# %% [markdown]
# ## The default method: orthonormal factors, a block Krylov step, no learning rate
#
# `gdla.solve(gdla.SVD(M))` picks the problem's own optimizer (`gdla.optim.BlockKrylov`: each
# step moves to the best point of a block Krylov space) and stops at the default residual
# tolerance (1e-8 in float64); on these matrices one step gets there.

# %%
default = {}
for name, M in matrices.items():
    svd = gdla.SVD(M.double())
    result = gdla.solve(svd)
    default[name] = result
    U, S, V = result.solution
    error = float(((S - torch.linalg.svdvals(M.double())).abs()).max())
    print(
        f"{name}: {result.status.name}, {result.evaluations} evaluations, max |S − σ| = {error:.1e}, "
        f"‖UᵀU − I‖_F = {float(torch.linalg.matrix_norm(U.T @ U - torch.eye(U.shape[1], dtype=U.dtype))):.1e}"
    )

# %%
fig, axes = plt.subplots(1, len(matrices), figsize=(11, 3.5), sharey=True)
for ax, (name, M) in zip(axes, matrices.items()):
    sigma = torch.linalg.svdvals(M.double())
    index = torch.arange(len(sigma))
    ax.plot(index, sigma, "o", markersize=11, fillstyle="none", label="torch.linalg.svdvals")
    ax.plot(index, penalty[name].solution.S, "x", markersize=9, label="penalty recipe (SGD)")
    ax.plot(index, default[name].solution.S, ".", markersize=7, label='default (method="orthogonal")')
    ax.set_title(name)
    ax.set_xlabel("index")
    ax.set_xticks(index.tolist())
axes[0].set_ylabel("singular value")
axes[0].legend(fontsize=8)
fig.suptitle("Singular values found")
fig.tight_layout()
plt.show()

# %%
for name, result in default.items():
    assert result.converged
    assert torch.allclose(result.solution.S, torch.linalg.svdvals(matrices[name].double()), atol=1e-8)
assert not penalty["seed 317, 4×3"].converged and float(penalty["seed 317, 4×3"].solution.S[2]) < 1e-6
