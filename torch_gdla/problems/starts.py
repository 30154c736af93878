"""Seeded starting points that leave the global RNG alone."""
from __future__ import annotations

import torch
from torch import Tensor


def seeded_uniform(shape: torch.Size, seed: int, like: Tensor) -> Tensor:
    """``torch.manual_seed(seed); torch.rand(shape)`` without touching the global RNG."""
    generator = torch.Generator().manual_seed(int(seed))
    return torch.rand(shape, generator=generator).to(dtype=like.dtype, device=like.device)
