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
# # The matrix inverse by gradient descent
#
# The matrix-inverse tutorial guesses a random `approximate_inverse` X of a 4×4 matrix M and
# improves it by gradient descent on the mean squared error between `X @ M` and the identity,
# with SGD (learning rate 0.9, momentum 0.9) for 10 000 steps.  It asks: *how fast does the
# gradient algorithm converge?*  Its answer: *it depends; for the simple diagonal matrix it
# converges faster.*
#
# Here the same experiment runs with `torch_gdla`: the problem `gdla.MatrixInverse` is an
# `nn.Module` whose parameter is X and whose `forward()` is that loss, so the training loop is
# the tutorial's own.

# %%
# %matplotlib inline
import functools

import matplotlib.pyplot as plt
import torch

import torch_gdla as gdla

torch.set_printoptions(sci_mode=False)

# %% [markdown]
# ## The two matrices
#
# The tutorial's random matrix is `torch.manual_seed(314); torch.rand(4, 4)`; the second one is
# `diag(1, 2, 3, 4)`.  `MatrixInverse` starts X the way the tutorial does
# (`torch.manual_seed(314); torch.rand(4, 4)`).

# %%
torch.manual_seed(314)
M_random = torch.rand(4, 4)
M_diagonal = torch.diag(torch.tensor([1.0, 2.0, 3.0, 4.0]))
M_random

# %% [markdown]
# ## The tutorial's loop: SGD(lr 0.9, momentum 0.9)
#
# One step is the tutorial's *improve*: zero the gradient, evaluate the loss
# `mse(X @ M, I)`, back-propagate, step.  1000 steps are enough to see both curves reach
# float32's rounding floor (the tutorial runs 10 000).

# %%
STEPS = 1000


def sgd_losses(M: torch.Tensor, steps: int = STEPS) -> tuple[gdla.MatrixInverse, torch.Tensor]:
    inverse = gdla.MatrixInverse(M, side="left")  # X ≈ M⁻¹, loss mse(X @ M, I)
    optimizer = torch.optim.SGD(inverse.parameters(), lr=0.9, momentum=0.9)
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = inverse()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return inverse, torch.tensor(losses)


inverse_random, losses_random = sgd_losses(M_random)
inverse_diagonal, losses_diagonal = sgd_losses(M_diagonal)


def first_below(losses: torch.Tensor, level: float) -> int:
    return int((losses < level).nonzero()[0])


for name, losses in [("random", losses_random), ("diagonal", losses_diagonal)]:
    print(
        f"{name:>8}: loss {losses[0]:.4f} at step 0, < 1e-8 at step {first_below(losses, 1e-8)}, "
        f"< 1e-12 at step {first_below(losses, 1e-12)}"
    )

# %% [markdown]
# ## Inspect the results
#
# `solution @ M` should be the identity; `residual()` is ‖XM − I‖_F / ‖I‖_F.

# %%
print(inverse_random.solution @ M_random)
print("residual, random matrix:  ", inverse_random.residual())
print("residual, diagonal matrix:", inverse_diagonal.residual())

# %% [markdown]
# ## How fast does the gradient algorithm converge?

# %%
fig, ax = plt.subplots(figsize=(7, 4))
ax.semilogy(losses_random, label="random matrix, SGD(0.9, momentum 0.9)")
ax.semilogy(losses_diagonal, label="diag(1, 2, 3, 4), SGD(0.9, momentum 0.9)")
ax.set_xlabel("iteration")
ax.set_ylabel("loss")
ax.set_title("How fast does the gradient algorithm converge?\nIt depends: for the diagonal matrix it converges faster")
ax.legend()
plt.show()

# %%
assert first_below(losses_diagonal, 1e-12) < first_below(losses_random, 1e-12)

# %% [markdown]
# ## The same run in one call, and with no learning rate at all
#
# `gdla.solve` runs the same optimizer until a stopping rule holds and says why it stopped.
# Without an optimizer it uses the problem's tuning-free default, conjugate gradient with the
# exact step of a quadratic loss, which needs a handful of loss evaluations.

# %%
sgd = functools.partial(torch.optim.SGD, lr=0.9, momentum=0.9)
result = gdla.solve(gdla.MatrixInverse(M_random), optimizer=sgd, tol=1e-12, max_steps=10_000)
print(result.converged, result.status.name, result.steps, "steps:", result.reason)

default = gdla.solve(gdla.MatrixInverse(M_random.double()))
print(
    default.converged, default.status.name, default.steps, "steps,", default.evaluations, "evaluations:", default.reason
)
