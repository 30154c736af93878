"""Figures of the solver sections: quick start (README.md, docs/getting-started.md), the configs
table (docs/cli.md), the CLI summary of ``configs/svd.yaml`` (docs/reliability.md), the
minimisation table (docs/operations/minimisation.md) and the SVD section
(docs/operations/svd.md); see ``docs/regenerate.py``."""
from __future__ import annotations

import contextlib
import functools
import io
import math
import tempfile

import torch
from regenerate import ROOT, Figure, sci

import torch_gdla as gdla

CONFIGS = ROOT / "configs"


def _rand(*shape: int, seed: int) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


# The matrix-operations tutorial's five SVD test matrices (float32; M4 is the transpose of a 3×4 draw).
TUTORIAL_MATRICES = {
    "M1": lambda: _rand(5, 4, seed=314), "M2": lambda: _rand(4, 4, seed=315), "M3": lambda: _rand(7, 4, seed=316),
    "M4": lambda: _rand(3, 4, seed=317).T, "M5": lambda: _rand(4, 3, seed=317),
}


def sgd(lr: float, momentum: float = 0.0) -> functools.partial:
    return functools.partial(torch.optim.SGD, lr=lr, momentum=momentum)


def inverse_tutorial_matrix() -> torch.Tensor:
    torch.manual_seed(314)
    return torch.rand(4, 4)


def quick_start() -> list[str]:
    M = inverse_tutorial_matrix()
    inv = gdla.MatrixInverse(M, side="left")
    opt = torch.optim.SGD(inv.parameters(), lr=0.9, momentum=0.9)
    for _ in range(10_000):
        opt.zero_grad(); loss = inv(); loss.backward(); opt.step()  # noqa: E702 - the README's loop
    decimals = max(d for d in range(1, 12) if torch.equal((inv.solution @ M).round(decimals=d), torch.eye(4)) or d == 1)
    res = gdla.solve(gdla.MatrixInverse(M), optimizer=sgd(0.9, 0.9), tol=1e-12, max_steps=10_000)
    default = gdla.solve(gdla.MatrixInverse(M.double()))
    return [f"inv.solution @ M        # ≈ I to {decimals} decimals",
            f"inv.residual()          # ‖XM − I‖_F / ‖I‖_F ≈ {sci(inv.residual(), 0)}",
            f"res.converged, res.reason, res.steps      # {res.converged}, {res.reason!r}, {res.steps}",
            f"# no optimizer: tuning-free conjugate gradient, {default.evaluations} evaluations"]


def fit(config: str, *extra: str) -> tuple[gdla.Result, str, object]:
    """Run ``torch-gdla fit --config configs/<config>`` in this process: (result, printed summary, cli)."""
    from torch_gdla.fit_cli import GdlaCLI
    from torch_gdla.lightning.support import quiet_lightning

    out = io.StringIO()
    with tempfile.TemporaryDirectory() as runs, quiet_lightning(), contextlib.redirect_stdout(out):
        cli = GdlaCLI(args=["--config", str(CONFIGS / config), "--trainer.logger.init_args.save_dir", runs,
                            "--trainer.enable_progress_bar", "false", "--trainer.enable_checkpointing", "false", *extra])
    assert cli.result is not None
    return cli.result, out.getvalue(), cli


def below(result: gdla.Result) -> dict[float, int]:
    return dict(result.milestones())


def configs_table() -> list[str]:
    rows, random_steps = [], 0
    for name, text in [("inverse_random", "matrix-operations tutorial: inverse of `manual_seed(314); rand(4,4)`, "
                                           "SGD(0.9, 0.9), 10 000 steps: loss {start} → < 1e-8 at step {s8}, "
                                           "< 1e-12 at {s12}"),
                       ("inverse_diagonal", "matrix-operations tutorial: inverse of diag(1,2,3,4): {start} → < 1e-8 "
                                            "at {s8}, < 1e-12 at {s12} (better conditioned, faster)")]:
        result, _, _ = fit(f"{name}.yaml")
        steps = below(result)
        random_steps = steps[1e-12] if name == "inverse_random" else random_steps
        rows.append(f"| `{name}.yaml` | " + text.format(start=f"{float(result.history[0]):.4f}", s8=steps[1e-8],
                                                        s12=steps[1e-12]) + " |")
    gallery = (f"The diagonal matrix reaches a loss of 1e-12 at step {below(result)[1e-12]},\n"
               f"the random one at step {random_steps}; both")
    result, _, _ = fit("linear_system.yaml")
    x = [round(v, 4) for v in result.solution.tolist()]
    x_text = "[" + ", ".join(f"{v:g}" for v in x) + "]"
    rows.append(f"| `linear_system.yaml` | linear-system tutorial: the 4×4 system, SGD(0.01, 0.9), {result.steps} "
                f"steps from x = 0 → x = {x_text} |")
    result, _, _ = fit("svd.yaml")
    rows.append("| `svd.yaml` | matrix-operations tutorial, part 3 (the SVD), default method: orthonormal U, V; "
                f"singular values to 1e-8 in {result.evaluations} evaluations |")
    result, _, _ = fit("minimize_sphere.yaml")
    rows.append(f"| `minimize_sphere.yaml` | gradients tutorial: x² + y² + 4 with SGD(lr 0.1): {result.steps} steps |")
    result, _, _ = fit("minimize_sixth_power.yaml")
    rows.append("| `minimize_sixth_power.yaml` | gradients tutorial: x⁶ + y⁶ + z⁶ + w⁶ + 4 with Adam(lr 0.04, "
                f"betas (0.5, 0.9)): {result.steps} steps |")
    result, _, _ = fit("minimize_staged.yaml")
    rows.append("| `minimize_staged.yaml` | the gradients tutorial's staged scheme (three Adams switched by relative "
                f"change): {result.steps} steps |")
    return [*rows, gallery]


def svd_summary() -> list[str]:
    """The end-of-run summary `torch-gdla fit --config configs/svd.yaml` prints (the metrics section)."""
    _, printed, _ = fit("svd.yaml")
    summary = printed.strip().split("\nsolution:")[0]
    return ["$ torch-gdla fit --config configs/svd.yaml\n" + summary + "\n```"]


def minimisation_table() -> list[str]:
    from torch_gdla.optim import Staged
    from torch_gdla.optim.staged import annealed_adam_stages

    sphere = 3 * torch.randn(2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    sixth = torch.randn(4, generator=torch.Generator().manual_seed(0), dtype=torch.float64) + 1
    adam = functools.partial(torch.optim.Adam, lr=4, betas=(0.5, 0.9))
    adam04 = functools.partial(torch.optim.Adam, lr=0.04, betas=(0.5, 0.9))

    def staged(params):
        return Staged(params, stages=annealed_adam_stages(0.04), every=10)

    def run(fn, x0, optimizer, **criteria):
        return gdla.solve(gdla.Minimize(fn, x0=x0.clone()), optimizer=optimizer, max_steps=10_000, **criteria)

    sgd_sphere = run("sphere", sphere, sgd(0.1), tol=4 + 1e-9)
    adam_sphere = run("sphere", sphere, adam, tol=4 + 2e-3)
    adam_long = gdla.solve(gdla.Minimize("sphere", x0=sphere.clone()), optimizer=adam, tol=0, max_steps=1000)
    sgd_sixth = run("sixth_power", sixth, sgd(0.1), tol=4 + 1e-6)
    adam_sixth, staged_sixth = run("sixth_power", sixth, adam04, tol=4 + 1e-6), run("sixth_power", sixth, staged, tol=4 + 1e-6)
    adam_rtol, staged_rtol = run("sixth_power", sixth, adam04, rtol=1e-6), run("sixth_power", sixth, staged, rtol=1e-6)
    assert sgd_sixth.status is gdla.Status.DIVERGED and all(r.status is gdla.Status.TOL for r in (
        sgd_sphere, adam_sphere, adam_sixth, staged_sixth)) and adam_rtol.status is staged_rtol.status is gdla.Status.RTOL
    inf_at = sgd_sixth.reason.split(" at step ")[1].split(";")[0]
    return [
        f"`3·randn(2)` = ({sphere[0]:.3f}, {sphere[1]:.3f}); x⁶ + y⁶ + z⁶ + w⁶ + 4 from `randn(4) + 1` = "
        f"({', '.join(f'{v:.3f}' for v in sixth.tolist())})",
        f"| x² + y² + 4 | SGD(lr .1) | tol 4 + 1e-9 | tol reached, {sgd_sphere.steps} steps |",
        f"| x² + y² + 4 | Adam(lr 4, betas (.5, .9)) | tol 4 + 2e-3 | tol reached, {adam_sphere.steps} steps (lr 4 then "
        f"oscillates: the best loss of 1000 steps is {sci(adam_long.loss - 4)} above 4) |",
        f"| x⁶ + y⁶ + z⁶ + w⁶ + 4 | SGD(lr .1) | tol 4 + 1e-6 | **diverged** (loss inf at step {inf_at}) of 10 000 allowed |",
        f"| x⁶ + y⁶ + z⁶ + w⁶ + 4 | Adam(lr .04, betas (.5, .9)) | tol 4 + 1e-6 | tol reached, **{adam_sixth.steps} steps** |",
        f"| x⁶ + y⁶ + z⁶ + w⁶ + 4 | Staged (the gradients tutorial's three Adams) | tol 4 + 1e-6 | "
        "tol reached, "
        f"**{staged_sixth.steps} steps** |",
        f"| x⁶ + … + 4 | Adam / Staged | rtol 1e-6 | {adam_rtol.steps} / {staged_rtol.steps} steps |",
    ]


MINIMISATION = "docs/operations/minimisation.md"


def staged_snippet() -> list[str]:
    """Run the minimisation page's Staged snippet as it is written there."""
    page = (ROOT / MINIMISATION).read_text()
    code = page.split("## Staged optimizers\n\n```python\n", 1)[1].split("```", 1)[0]
    namespace: dict = {}
    exec(compile(code, f"{MINIMISATION}: Staged optimizers", "exec"), namespace)  # noqa: S102 - our own page
    return [f"result.steps                                      # {namespace['result'].steps} (one Adam"]


def svd_section() -> list[str]:
    """The tutorial's penalty recipe on M1 (works), M5 (loses a value) and M3 (crawls)."""
    texts: list[str] = []

    def recipe(name: str, steps: int) -> tuple[gdla.SVD, gdla.Result]:
        svd = gdla.SVD(TUTORIAL_MATRICES[name](), method="penalty")
        return svd, gdla.solve(svd, sgd(0.9, 0.9), tol=0, max_steps=steps)

    _, m1 = recipe("M1", 20_000)
    first = int((m1.history < 1e-6).nonzero()[0]) + 1
    texts.append(f"(loss < 1e-6 at step ~{round(first, -2)}, singular values "
                 + ", ".join(f"{s:.4f}" for s in m1.solution.S.tolist()) + ")")
    _, m5 = recipe("M5", 2000)
    texts.append(f"plateaus at σ₃²/(mn) = {m5.loss:.5f}")
    _, m3 = recipe("M3", 20_000)
    sigma = torch.linalg.svdvals(TUTORIAL_MATRICES["M3"]().double())
    wrong = (m3.solution.S[2:].double() - sigma[2:]).abs()
    assert bool((wrong > 1e-2).all() & (wrong < 1e-1).all()), wrong  # wrong in the second decimal
    texts.append(f"values ({sigma[2]:.3f}, {sigma[3]:.3f}) make the loss nearly flat")
    texts.append(f"after 20 000 steps the loss has\nonly crept to {sci(m3.loss)} and those two values are wrong in the "
                 "second decimal")
    return texts


def svd_tutorial_default() -> list[str]:
    """The tutorial page's claim for the default method (and default optimizer) on the five matrices."""
    steps, evaluations, worst = set(), set(), 0.0
    for make in TUTORIAL_MATRICES.values():
        M = make().double()
        result = gdla.solve(gdla.SVD(M))
        sigma = torch.linalg.svdvals(M)
        assert result.converged
        steps.add(result.steps)
        evaluations.add(result.evaluations)
        worst = max(worst, ((result.solution.S - sigma).abs() / sigma).max().item())
    bound = 10.0 ** math.ceil(math.log10(worst))  # the power of ten the largest relative error stays under
    span = (lambda values: f"{min(values)}" if len(values) == 1 else f"{min(values)}–{max(values)}")
    return [f"singular values within {sci(bound, 0)} relative in {span(steps)} step{'s' if max(steps) > 1 else ''} "
            f"({span(evaluations)} loss evaluation{'s' if max(evaluations) > 1 else ''})"]


FIGURES = [
    Figure("quick_start", quick_start, True, "Quick start: the plain loop, solve() with SGD, the default optimizer",
           ("README.md", "docs/getting-started.md")),
    Figure("configs_table", configs_table, True, "Configs: the table of configs (each run by torch-gdla fit)",
           ("docs/cli.md",)),
    Figure("svd_summary", svd_summary, True, "Solution-quality metrics: the summary of configs/svd.yaml",
           ("docs/reliability.md",)),
    Figure("staged_snippet", staged_snippet, True, "Staged optimizers: the page's snippet, run as written",
           (MINIMISATION,)),
    Figure("minimisation", minimisation_table, True, "Minimize: the starts and the table of runs", (MINIMISATION,)),
    Figure("svd_section", svd_section, False, "Singular value decomposition: the tutorial's penalty recipe",
           ("docs/operations/svd.md",)),
    Figure("svd_tutorial_default", svd_tutorial_default, True,
           "The SVD tutorial page: the default method on the tutorial's five matrices", ("docs/tutorials/svd.md",)),
]
