import functools
import os

# Idle OpenMP threads sleep instead of spinning (set before torch loads libgomp).  On a shared
# or busy CPU, torch's spinning worker threads otherwise burn about as much CPU time as the
# tests themselves and double the wall time; results are unchanged.  Override by exporting
# OMP_WAIT_POLICY before running pytest.  Subprocesses (DDP, CLI, notebooks) inherit it.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest
import torch

LINEAR_SYSTEM_TUTORIAL_A = [[1, 3, 2, -1], [5, 2, 1, -2], [0, 1, 2, 4], [1, 1, -1, -3]]
LINEAR_SYSTEM_TUTORIAL_B = [9, 4, 24, -12]


def seed_matrix() -> torch.Tensor:
    """The matrix-operations tutorial's random matrix: torch.manual_seed(314); torch.rand(4, 4)."""
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


# --- hypothesis profiles (tests/test_properties.py) --------------------------------------------
# Default "ci": fast enough for every run.  By hand: HYPOTHESIS_PROFILE=thorough python -m pytest
# tests/test_properties.py --hypothesis-show-statistics
import os as _os

from hypothesis import HealthCheck as _HealthCheck
from hypothesis import settings as _settings

_settings.register_profile("ci", max_examples=12, deadline=None, derandomize=True,
                           suppress_health_check=[_HealthCheck.too_slow])
_settings.register_profile("thorough", max_examples=200, deadline=None,
                           suppress_health_check=[_HealthCheck.too_slow])
_settings.load_profile(_os.environ.get("HYPOTHESIS_PROFILE", "ci"))
