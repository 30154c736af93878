import functools

import pytest
import torch

SEED_002_A = [[1, 3, 2, -1], [5, 2, 1, -2], [0, 1, 2, 4], [1, 1, -1, -3]]
SEED_002_B = [9, 4, 24, -12]


def seed_matrix() -> torch.Tensor:
    """Seed 000's random matrix: torch.manual_seed(314); torch.rand(4, 4)."""
    torch.manual_seed(314)
    return torch.rand(4, 4)


def sgd(lr: float, momentum: float = 0.0):
    return functools.partial(torch.optim.SGD, lr=lr, momentum=momentum)


@pytest.fixture
def M1() -> torch.Tensor:
    return seed_matrix()


@pytest.fixture
def M2() -> torch.Tensor:
    return torch.diag(torch.tensor([1.0, 2.0, 3.0, 4.0]))
