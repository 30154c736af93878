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
# # A linear system, then a neural network
#
# The linear-system tutorial solves
#
# $$w+3x+2y-z=9,\quad 5w+2x+y-2z=4,\quad x+2y+4z=24,\quad w+x-y-3z=-12$$
#
# as `Ax = b` by gradient descent on the mean squared error `mse(Ax, b)` with SGD (learning
# rate 0.01, momentum 0.9) for 1000 steps, and finds x = [1, 2, 3, 4].  It then builds a
# neural network, 784-512-256-10 with ReLU and Softmax, for MNIST.
#
# Here the system is `gdla.LinearSystem(A, b)`; the network is trained on the 8×8 digits that
# ship with scikit-learn (so 64 inputs), and its last layer is then replaced by a least-squares
# readout solved with `gdla.LinearSystem` (as `examples/mlp_digits.py` does with Lightning).

# %%
# %matplotlib inline
import matplotlib.pyplot as plt
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

import torch_gdla as gdla

# %% [markdown]
# ## Ax = b by gradient descent

# %%
A = torch.tensor([[1, 3, 2, -1], [5, 2, 1, -2], [0, 1, 2, 4], [1, 1, -1, -3]]).float()
b = torch.tensor([9, 4, 24, -12]).float()

system = gdla.LinearSystem(A, b)  # the unknown x starts at 0; loss mse(A @ x, b)
optimizer = torch.optim.SGD(system.parameters(), lr=0.01, momentum=0.9)
losses = []
for _ in range(1000):
    optimizer.zero_grad()
    loss = system()
    loss.backward()
    optimizer.step()
    losses.append(loss.item())
print("x =", system.solution, " residual ‖Ax − b‖/‖b‖ =", system.residual())

# %%
fig, ax = plt.subplots(figsize=(7, 4))
ax.semilogy(losses)
ax.set_xlabel("iteration")
ax.set_ylabel("mse(Ax, b)")
ax.set_title("Ax = b with SGD(lr 0.01, momentum 0.9)")
plt.show()

# %% [markdown]
# `gdla.solve` with no optimizer uses the tuning-free default (conjugate gradient with the exact
# step of a quadratic loss) and stops at the default residual tolerance of float32 (1e-4).

# %%
result = gdla.solve(gdla.LinearSystem(A, b))
print(result.solution, f"{result.steps} steps, {result.evaluations} evaluations:", result.reason)
assert torch.allclose(system.solution, torch.tensor([1.0, 2.0, 3.0, 4.0]), atol=1e-4)
assert result.converged

# %% [markdown]
# ## The tutorial's network, on 8×8 digits
#
# `Flatten`, then Linear-ReLU-Linear-ReLU-Linear-Softmax; the network outputs probabilities,
# so the loss is their negative log.  Two epochs of Adam (lr 1e-3, batches of 64) keep this
# notebook fast.

# %%
digits = load_digits()
images = torch.tensor(digits.images / 16.0, dtype=torch.float32)  # pixel values 0..16 -> 0..1
labels = torch.tensor(digits.target)
train_x, test_x, train_y, test_y = train_test_split(images, labels, test_size=0.25, random_state=0, stratify=labels)


class Neural(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Flatten(), nn.Linear(64, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU())
        self.head = nn.Sequential(nn.Linear(256, 10), nn.Softmax(dim=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def accuracy(scores: torch.Tensor, labels: torch.Tensor) -> float:
    return float((scores.argmax(dim=1) == labels).float().mean())


torch.manual_seed(0)
model = Neural()
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
generator = torch.Generator().manual_seed(0)
training_losses = []
for _epoch in range(2):
    order = torch.randperm(len(train_x), generator=generator)
    for start in range(0, len(order), 64):
        batch = order[start : start + 64]
        optimizer.zero_grad()
        loss = nn.functional.nll_loss(model(train_x[batch]).clamp_min(1e-12).log(), train_y[batch])
        loss.backward()
        optimizer.step()
        training_losses.append(loss.item())
model.eval()
with torch.no_grad():
    mlp_accuracy = accuracy(model(test_x), test_y)
print(f"MLP test accuracy after 2 epochs: {mlp_accuracy:.3f}")

# %% [markdown]
# ## A least-squares readout solved by gradient descent
#
# Keep the trained 256 features F (plus a column of ones for the bias) and replace the last
# layer by the least-squares solution of `[F 1] W ≈ one-hot(y)`: a `LinearSystem` with 1347
# rows, 257 unknowns and 10 right-hand sides.  ReLU features have dead units (zero columns), so
# the system is rank-deficient; from W = 0 gradient descent stays in the row space and reaches
# the minimum-norm solution.  float64, because float32 conjugate gradient stalls on a system
# this badly conditioned.  A normal-equation residual of 1e-4 is plenty for classification
# (`examples/mlp_digits.py` goes to 1e-6 and gains nothing in accuracy).

# %%
with torch.no_grad():
    features_train, features_test = model.features(train_x).double(), model.features(test_x).double()


def with_bias(features: torch.Tensor) -> torch.Tensor:
    return torch.cat([features, torch.ones(len(features), 1, dtype=features.dtype)], dim=1)


print("dead units (zero columns):", int((features_train.abs().sum(dim=0) == 0).sum()))
readout = gdla.LinearSystem(with_bias(features_train), nn.functional.one_hot(train_y, 10).double())
readout_result = gdla.solve(readout, residual_tol=1e-4, max_steps=1000)  # examples/mlp_digits.py: 1e-6
readout_accuracy = accuracy(with_bias(features_test) @ readout_result.solution, test_y)
print(f"readout: {readout_result.steps} CG steps, {readout_result.reason}")
print(f"test accuracy: MLP {mlp_accuracy:.3f}, least-squares readout {readout_accuracy:.3f}")

# %%
fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.8))
left.plot(training_losses)
left.set_xlabel("Adam step")
left.set_ylabel("negative log-likelihood")
left.set_title("training the MLP (2 epochs)")
right.semilogy(readout_result.history)
right.set_xlabel("conjugate-gradient step")
right.set_ylabel("mse([F 1] W, one-hot)")
right.set_title(f"readout: accuracy {mlp_accuracy:.3f} → {readout_accuracy:.3f}")
fig.tight_layout()
plt.show()

# %%
assert readout_result.converged
assert readout_accuracy >= mlp_accuracy - 0.01
