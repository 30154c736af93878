"""A string fn reaches registered functions only: never an importable callable, never an import."""
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import torch_gdla as gdla
from torch_gdla import functions
from torch_gdla.functions import FUNCTIONS, register, resolve, unregister

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def registry():
    """Leave the registry as it was (other tests iterate over FUNCTIONS)."""
    names, paths = dict(FUNCTIONS), dict(functions._PATHS)
    yield
    FUNCTIONS.clear(), FUNCTIONS.update(names)
    functions._PATHS.clear(), functions._PATHS.update(paths)


@pytest.mark.parametrize("name", ["os.system", "this.s", "sys.exit", "subprocess.run", "builtins.eval",
                                  "torch_gdla.functions.resolve", "nowhere.function"])
def test_import_paths_are_refused_without_importing(name):
    already = "this" in sys.modules
    with pytest.raises(gdla.errors.ArgumentError) as error:
        gdla.Minimize(name, [1.0, 2.0])
    message = str(error.value)
    assert f"fn={name!r} is not a known function: use one of rosenbrock, sixth_power, sphere" in message
    assert "@torch_gdla.functions.register" in message and "pass the callable itself" in message
    assert ("this" in sys.modules) == already  # nothing was imported


def test_a_config_cannot_import_or_call_anything(tmp_path):
    # In a fresh process: sys.exit would end the run silently, this.s (and a class_path dict
    # under fn) would import `this`, which prints on import; every one is a clean config error.
    script = textwrap.dedent(f"""\
        import sys
        from torch_gdla.cli import main
        for fn in ["os.system", "sys.exit", "this.s", "{{class_path: this.Foo}}", "{{class_path: os.system}}"]:
            config = {str(tmp_path)!r} + "/c.yaml"
            open(config, "w").write(
                "model:\\n  problem:\\n    class_path: torch_gdla.Minimize\\n    init_args:\\n"
                f"      fn: {{fn}}\\n      x0: [1.0]\\n"
                "trainer:\\n  max_steps: 2\\n  logger: false\\n  enable_checkpointing: false\\n")
            try:
                main(["fit", "--config", config])
            except SystemExit as end:
                print("exit", end.code)
        print("imported this:", "this" in sys.modules)
        """)
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert done.stdout.count("exit 2") == 5, done.stdout + done.stderr
    assert "imported this: False" in done.stdout and "The Zen of Python" not in done.stdout
    assert done.stderr.count("is not a known function") == 3  # the dicts fail as "expected a str"


def test_register_decorator_by_name_and_by_function(registry):
    @register
    def ring(x):
        return (x.square().sum() - 1).square()

    @register("bowl")
    def some_bowl(x):
        return (x - 2).square().sum()

    assert resolve("ring") is ring and resolve("bowl") is some_bowl
    # a local function has no import path to be found by
    with pytest.raises(ValueError, match="not a known function"):
        resolve(f"{__name__}.test_register_decorator_by_name_and_by_function.<locals>.ring")
    problem = gdla.Minimize("bowl", [0.0, 0.0], dtype="float64")
    result = gdla.solve(problem, residual_tol=1e-10)
    assert result.converged and torch.allclose(result.solution, torch.full((2,), 2.0, dtype=torch.float64))
    assert unregister("bowl") is some_bowl and "bowl" not in FUNCTIONS


def test_registered_paths_and_errors(registry):
    assert resolve("torch_gdla.functions.sixth_power") is functions.sixth_power
    with pytest.raises(ValueError, match="already registered as 'sphere'"):
        register("sphere")(lambda x: x.sum())
    assert register("sphere")(functions.sphere) is functions.sphere  # the same function again: fine
    with pytest.raises(ValueError, match="register a lambda .* under a name"):
        register(lambda x: x.sum())
    with pytest.raises(ValueError, match="non-empty name without spaces"):
        register("two words")(functions.sphere)
    with pytest.raises(TypeError, match="takes a callable"):
        register("number")(3)
    # a callable passed directly needs no registration
    assert gdla.Minimize(lambda x: x.square().sum(), [1.0]).value == 1.0


def test_a_registered_function_runs_from_a_config(registry, tmp_path):
    @register("shifted_sphere")
    def shifted_sphere(x):
        return (x - 1).square().sum() + 4

    config = tmp_path / "c.yaml"
    config.write_text(textwrap.dedent("""\
        model:
          problem:
            class_path: torch_gdla.Minimize
            init_args: {fn: shifted_sphere, x0: [3.0, -2.0], dtype: float64}
        trainer: {max_steps: 100, logger: false, enable_checkpointing: false, enable_progress_bar: false}
        """))
    from torch_gdla.fit_cli import GdlaCLI

    result = GdlaCLI(args=["fit", "--config", str(config), "--trainer.default_root_dir", str(tmp_path)]).model.result
    assert result.converged
    assert torch.allclose(result.solution, torch.ones(2, dtype=torch.float64), atol=1e-7)
