"""gdla.optim.Staged: the torch.optim contract, the gradients tutorial's switching rule, plain loops and solve()."""
import copy
import functools

import pytest
import torch

import torch_gdla as gdla
from torch_gdla.functions import sixth_power
from torch_gdla.optim import Stage, Staged
from torch_gdla.optim.staged import annealed_adam_stages


def start():
    return (torch.randn(4, generator=torch.Generator().manual_seed(0), dtype=torch.float64) + 1.0).requires_grad_()


def run(x, optimizer, steps):
    calls = 0
    losses = []

    def closure():
        nonlocal calls
        calls += 1
        optimizer.zero_grad()
        loss = sixth_power(x)
        loss.backward()
        return loss

    for _ in range(steps):
        losses.append(float(optimizer.step(closure)))
    return losses, calls


def test_contract_and_shared_parameters():
    x = start()
    optimizer = Staged([x], annealed_adam_stages())
    assert isinstance(optimizer, torch.optim.Optimizer)
    assert isinstance(optimizer.param_groups, list) and isinstance(optimizer.param_groups[0], dict)
    assert optimizer.param_groups[0]["params"][0] is x
    assert all(inner.param_groups[0]["params"][0] is x for inner in optimizer.optimizers)
    assert [inner.param_groups[0]["betas"] for inner in optimizer.optimizers] == [(0.5, 0.9), (0.9, 0.95), (0.9, 0.999)]
    optimizer.zero_grad()
    assert x.grad is None


def test_closure_called_once_per_step_and_seed_switching_rule():
    x = start()
    optimizer = Staged([x], annealed_adam_stages(), every=10)
    stages, changes = [], []
    losses = []
    for _ in range(120):
        losses.append(float(optimizer.step(lambda: (optimizer.zero_grad(), sixth_power(x).backward(), sixth_power(x))[2])))
        stages.append(optimizer.stage)
        changes.append(optimizer.change)
    # The stage of step k follows the change measured (every 10 steps) before it: >.1 -> 0, >.01 -> 1, else 2.
    expected = [0]
    for k in range(1, 120):
        change = changes[k - 1]
        expected.append(0 if change > 0.1 else 1 if change > 0.01 else 2)
    assert stages == expected and {0, 1, 2} <= set(stages)
    # the change is |l1 - l2| / max(l1, l2) over losses 10 steps apart
    assert changes[10] == pytest.approx(abs(losses[0] - losses[10]) / max(losses[0], losses[10]))
    assert changes[11] == changes[10]

    x2 = start()
    counted = Staged([x2], annealed_adam_stages())
    _, calls = run(x2, counted, 50)
    assert calls == 50


def test_single_adam_stage_is_plain_adam():
    x, y = start(), start()
    staged, _ = run(x, Staged([x], [functools.partial(torch.optim.Adam, lr=0.04, betas=(0.5, 0.9))]), 30)
    plain, _ = run(y, torch.optim.Adam([y], lr=0.04, betas=(0.5, 0.9)), 30)
    assert staged == plain and torch.equal(x, y)


def test_state_dict_round_trip_resumes_identically():
    x = start()
    optimizer = Staged([x], annealed_adam_stages())
    run(x, optimizer, 45)
    saved_x, saved_state = x.detach().clone(), copy.deepcopy(optimizer.state_dict())
    assert saved_state["staged"]["steps"] == 45
    reference, _ = run(x, optimizer, 40)

    y = saved_x.clone().requires_grad_()
    resumed = Staged([y], annealed_adam_stages())
    resumed.load_state_dict(saved_state)
    assert (resumed.stage, resumed.steps, resumed.last_loss) == (saved_state["staged"]["stage"], 45, saved_state["staged"]["last_loss"])
    again, _ = run(y, resumed, 40)
    assert again == reference and torch.equal(x, y)


def test_plain_training_loop_without_closure():
    x = start()
    optimizer = Staged([x], annealed_adam_stages())
    for _ in range(300):
        optimizer.zero_grad()
        loss = sixth_power(x)
        loss.backward()
        optimizer.step(loss=loss)
    assert optimizer.stage == 2 and sixth_power(x).item() - 4 < 1e-6
    with pytest.raises(RuntimeError, match=r"step\(closure\) or, after loss.backward\(\), step\(loss=loss\)"):
        optimizer.step()


def test_under_solve_with_stage_tuples():
    stages = [(functools.partial(torch.optim.Adam, lr=0.04, betas=(0.5, 0.9)), 0.1),
              Stage(functools.partial(torch.optim.Adam, lr=0.04, betas=(0.9, 0.95)), 0.01),
              functools.partial(torch.optim.Adam, lr=0.04)]
    result = gdla.solve(gdla.Minimize("sixth_power", start().detach()), optimizer=functools.partial(Staged, stages=stages),
                        tol=4 + 1e-6)
    assert result.status is gdla.Status.TOL and result.steps == result.evaluations == 118


def test_clear_errors():
    x = start()
    adam = functools.partial(torch.optim.Adam, lr=0.1)
    with pytest.raises(ValueError, match="non-empty list"):
        Staged([x], [])
    with pytest.raises(ValueError, match="last stage.*remove its until"):
        Staged([x], [(adam, 0.1)])
    with pytest.raises(ValueError, match=r"stages\[1\].until must be a number > 0 and below"):
        Staged([x], [(adam, 0.01), (adam, 0.1), adam])
    with pytest.raises(TypeError, match="must return a torch.optim.Optimizer"):
        Staged([x], [lambda params: None])
    with pytest.raises(ValueError, match="not its own"):
        Staged([x], [lambda params: torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)])
    with pytest.raises(ValueError, match="every must be a positive integer"):
        Staged([x], [adam], every=0)
    with pytest.raises(ValueError, match="not saved by a Staged"):
        Staged([x], [adam]).load_state_dict(torch.optim.Adam([x]).state_dict())
