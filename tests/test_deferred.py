"""Deferred checking (the default off the CPU, forced here): losses stay on the device and the
host reads them once per block, yet runs stop at the same step with the same answer."""
import functools

import pytest
import torch

import torch_gdla as gdla


def run(problem, optimizer, criteria, deferred, block, max_steps=10_000):
    iteration = gdla.Iteration(problem, optimizer, criteria, max_steps=max_steps, deferred=deferred)
    status = None
    while status is None:
        status = iteration.run(block)
    return iteration.finish()


@pytest.mark.parametrize("tol, lr", [(1e-12, 0.9), (0.0, 0.9), (1e-12, 50.0)])
def test_deferred_equals_per_step_checks(M1, tol, lr):
    results = []
    for deferred in (False, True):
        problem = gdla.MatrixInverse(M1)
        sgd = torch.optim.SGD(problem.parameters(), lr=lr, momentum=0.9)
        results.append(run(problem, sgd, gdla.Criteria(tol=tol), deferred, block=100, max_steps=2000))
    step_by_step, deferred = results
    assert deferred.status is step_by_step.status  # TOL, MAX_STEPS, DIVERGED
    assert deferred.steps == step_by_step.steps  # the exact step, although the block ran on
    assert torch.equal(deferred.history, step_by_step.history)
    assert deferred.loss == step_by_step.loss
    assert torch.equal(deferred.solution, step_by_step.solution)


def test_deferred_default_optimizer_and_batch_converge():
    g = torch.Generator().manual_seed(0)
    Ms = torch.rand(8, 4, 4, generator=g, dtype=torch.float64) + 2 * torch.eye(4, dtype=torch.float64)
    problem = gdla.MatrixInverse(Ms)
    result = run(problem, problem.default_optimizer(), gdla.Criteria(residual_tol=1e-12), True, block=3)
    assert result.converged and result.member_converged.all()
    assert problem.residual() <= 1e-12
    assert torch.allclose(result.solution, torch.linalg.inv(Ms), atol=1e-10)


def test_deferred_is_the_default_only_off_the_cpu(M1):
    problem = gdla.MatrixInverse(M1)
    assert gdla.Iteration(problem, problem.default_optimizer(), gdla.Criteria()).deferred is False


def test_solver_module_with_deferred_checks_stops_at_the_tol_step(M1):
    import pytorch_lightning as pl

    module = gdla.SolverModule(gdla.MatrixInverse(M1), optimizer=functools.partial(torch.optim.SGD, lr=0.9, momentum=0.9),
                               criteria=gdla.Criteria(tol=1e-12), steps_per_block=100, deferred_checks=True)
    trainer = pl.Trainer(max_steps=10_000, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False)
    trainer.fit(module)
    assert module.iteration.deferred
    result = module.result
    assert result.converged and result.loss <= 1e-12
    assert result.steps == int((result.history <= 1e-12).nonzero()[0]) + 1


def test_deferred_residual_rule_stops_at_a_block_end_with_the_steps_taken():
    # Only tol and divergence are exact inside a deferred block; the residual rule is applied at
    # the block's end, at the point that will be returned, and steps counts every step run.
    g = torch.Generator().manual_seed(0)
    A = torch.randn(300, 40, generator=g, dtype=torch.float64)
    b = torch.randn(300, generator=g, dtype=torch.float64)
    problem = gdla.LinearSystem(A, b)
    # an optimizer that evaluates through the closure (the default Krylov method reports its own
    # losses and is not deferred)
    optimizer = gdla.optim.ConjugateGradient(problem.parameters(), quadratic=True)
    result = run(problem, optimizer, gdla.Criteria(residual_tol=1e-12), True, block=25)
    assert result.converged and result.status is gdla.Status.RESIDUAL_TOL
    assert result.steps % 25 == 0
    assert problem.residual() <= 1e-12
    assert result.loss == problem().item()  # the reported loss is the returned point's
