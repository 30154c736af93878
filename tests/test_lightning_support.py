"""The Trainer state SolverModule reads through torch_gdla.lightning.support.

Two of the three facts have no public Lightning API, so the helpers read private attributes;
these tests run them on a real Trainer, so a Lightning release that renames one fails here
with a message naming the attribute, not as a solver that miscounts steps or skips checkpoints.
"""
import types

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint
from torch.utils.data import DataLoader

from torch_gdla.lightning.support import checkpoint_step_intervals, count_optimizer_steps, max_time_set


def trainer(**kwargs):
    return pl.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False, **kwargs)


def test_max_time_set_reads_the_timer():
    assert max_time_set(trainer(max_time={"seconds": 30}, enable_checkpointing=False))
    assert not max_time_set(trainer(enable_checkpointing=False))


def test_checkpoint_step_intervals_of_step_checkpoints_only():
    callbacks = [ModelCheckpoint(every_n_train_steps=7), ModelCheckpoint(every_n_epochs=1)]
    assert checkpoint_step_intervals(trainer(callbacks=callbacks)) == [7]
    assert checkpoint_step_intervals(trainer(enable_checkpointing=False)) == []


class RawSteps(pl.LightningModule):
    """Steps the raw optimizer 5 times per batch and counts the steps into Lightning."""

    def __init__(self):
        super().__init__()
        self.automatic_optimization = False
        self.w = torch.nn.Parameter(torch.ones(1))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)

    def train_dataloader(self):
        return DataLoader(torch.zeros(3, 1), batch_size=1)

    def training_step(self, batch, batch_idx):
        optimizer = self.optimizers().optimizer  # the raw torch optimizer, not Lightning's wrapper
        for _ in range(5):
            optimizer.zero_grad()
            (self.w ** 2).sum().backward()
            optimizer.step()
        count_optimizer_steps(self.trainer, 5)


def test_count_optimizer_steps_advances_global_step():
    run = trainer(max_epochs=1, enable_checkpointing=False)
    run.fit(RawSteps())
    assert run.global_step == 15  # 3 batches x 5 raw steps, none through Lightning's wrapper


def test_count_optimizer_steps_stops_the_run_at_max_steps():
    run = trainer(max_steps=10, max_epochs=5, enable_checkpointing=False)
    run.fit(RawSteps())
    assert run.global_step == 10  # Lightning's max_steps check sees the counted steps


def test_a_moved_attribute_is_named_in_the_error():
    with pytest.raises(RuntimeError, match=r"no trainer\.fit_loop\.epoch_loop\.manual_optimization\.optim_step_progress"
                                           r".*count_optimizer_steps reads it and needs updating"):
        count_optimizer_steps(types.SimpleNamespace(fit_loop=types.SimpleNamespace()), 3)
    checkpoint = ModelCheckpoint(every_n_train_steps=7)
    del checkpoint._every_n_train_steps
    with pytest.raises(RuntimeError, match=r"no ModelCheckpoint\._every_n_train_steps.*checkpoint_step_intervals"):
        checkpoint_step_intervals(types.SimpleNamespace(checkpoint_callbacks=[checkpoint]))
