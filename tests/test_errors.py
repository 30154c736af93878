"""Bad input gets a clear error: raised at construction or at solve(), naming the argument and
saying what to pass instead (issue 6).  Every test checks the exception type and the message."""
import functools
import os
import re
import textwrap

import numpy as np
import pytest
import torch

import torch_gdla as gdla
from torch_gdla.cli import GdlaCLI
from torch_gdla.matrices import File, load

SGD = functools.partial(torch.optim.SGD, lr=0.1)


def inverse() -> gdla.MatrixInverse:
    return gdla.MatrixInverse(torch.eye(2))


# --- shapes ---------------------------------------------------------------------------------


def test_non_square_matrix_for_an_inverse():
    with pytest.raises(ValueError, match=r"M must be square to have an inverse; got shape \(3, 4\).*gdla\.LinearSystem"):
        gdla.MatrixInverse(torch.rand(3, 4))


@pytest.mark.parametrize("b_shape, shown", [((4,), r"\(4,\)"), ((4, 2), r"\(4, 2\)"), ((3, 3, 1), r"\(3, 3, 1\)")])
def test_a_and_b_shapes_that_do_not_match(b_shape, shown):
    with pytest.raises(ValueError, match=rf"b must have shape \(3,\) .* or \(3, 'k'\) .* to match A of shape \(3, 3\); got {shown}"):
        gdla.LinearSystem(torch.rand(3, 3), torch.rand(*b_shape))


def test_batched_a_and_b_with_different_batches():
    with pytest.raises(ValueError, match=r"b's batch dimensions \(5,\) must equal A's \(2,\).*one right-hand side per batch member"):
        gdla.LinearSystem(torch.rand(2, 3, 3), torch.rand(5, 3))


@pytest.mark.parametrize("shape", [(0, 0), (2, 0, 0), (0, 3)])
def test_zero_size_matrix(shape):
    with pytest.raises(ValueError, match=r"A is empty \(shape .*\); pass a matrix with at least one entry"):
        gdla.LinearSystem(torch.rand(*shape), torch.rand(*shape[:-1]))
    if shape[-1] == shape[-2]:
        with pytest.raises(ValueError, match="M is empty"):
            gdla.MatrixInverse(torch.rand(*shape))


def test_one_dimensional_matrix_says_how_to_reshape():
    with pytest.raises(ValueError, match=r"M must be a matrix \(2-D.*got shape \(3,\); .*\.reshape\(1, -1\) or \.reshape\(-1, 1\)"):
        gdla.MatrixInverse(torch.rand(3))
    with pytest.raises(ValueError, match=r"A must be a matrix .*got shape \(3,\)"):
        gdla.LinearSystem(torch.rand(3), torch.rand(3))
    with pytest.raises(ValueError, match=r"M must be a matrix .*got shape \(\)"):
        gdla.MatrixInverse(torch.tensor(2.0))


def test_warm_start_of_the_wrong_shape():
    with pytest.raises(ValueError, match=r"init must have the unknown's shape \(3, 3\); got \(2, 2\)"):
        gdla.MatrixInverse(torch.rand(3, 3), init=torch.rand(2, 2))
    with pytest.raises(ValueError, match=r"init must be a tensor of M's shape \(3, 3\), or None .*; got 'zeros'"):
        gdla.MatrixInverse(torch.rand(3, 3), init="zeros")
    with pytest.raises(ValueError, match=r"init must be 'zeros', 'uniform' or a tensor of shape \(3,\); got 'foo'"):
        gdla.LinearSystem(torch.rand(3, 3), torch.rand(3), init="foo")


# --- values and dtypes ---------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_nan_or_inf_in_any_given_tensor(bad):
    M = torch.eye(3)
    M[1, 2] = bad
    with pytest.raises(ValueError, match=r"M contains 1 NaN or Inf entries; pass finite values"):
        gdla.MatrixInverse(M)
    with pytest.raises(ValueError, match=r"A contains 1 NaN or Inf entries"):
        gdla.LinearSystem(M, torch.ones(3))
    with pytest.raises(ValueError, match=r"b contains 1 NaN or Inf entries"):
        gdla.LinearSystem(torch.eye(3), torch.tensor([1.0, bad, 2.0]))
    with pytest.raises(ValueError, match=r"init contains 1 NaN or Inf entries"):
        gdla.MatrixInverse(torch.eye(3), init=M)


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.uint8, torch.bool])
def test_integer_and_bool_tensors_are_refused_with_the_conversion_to_use(dtype):
    with pytest.raises(TypeError, match=rf"M has dtype {dtype}; pass a floating tensor: e\.g\. M\.float\(\) or M\.double\(\)"):
        gdla.MatrixInverse(torch.eye(2, dtype=dtype))
    with pytest.raises(TypeError, match=rf"b has dtype {dtype}; .*b\.float\(\)"):
        gdla.LinearSystem(torch.eye(2), torch.ones(2, dtype=dtype))


def test_python_and_numpy_integers_are_converted_as_documented():
    """Nested lists (YAML) and NumPy arrays of integers become torch's default dtype."""
    assert gdla.MatrixInverse([[2, 0], [0, 4]]).M.dtype == torch.get_default_dtype()
    assert gdla.LinearSystem(np.eye(2, dtype=np.int64), [1, 2]).b.dtype == torch.get_default_dtype()


def test_complex_input_is_refused_with_a_real_alternative():
    with pytest.raises(TypeError, match=r"M is complex \(torch\.complex64\); torch_gdla solves real problems only: pass M\.real"):
        gdla.MatrixInverse(torch.eye(2, dtype=torch.complex64))
    with pytest.raises(TypeError, match=r"b is complex .*real 2x2 block form"):
        gdla.LinearSystem(torch.eye(2), torch.tensor([1j, 2]))
    with pytest.raises(TypeError, match=r"M is complex; .*pass its real part"):
        gdla.MatrixInverse([[1j, 0], [0, 1]])


def test_something_that_is_not_a_matrix():
    with pytest.raises(TypeError, match=r"M must be a tensor, an array or a nested list of numbers; got str"):
        gdla.MatrixInverse("[[1, 2], [3, 4]]")
    with pytest.raises(TypeError, match=r"M must be a tensor, an array or a nested list of numbers; got list"):
        gdla.MatrixInverse([[1.0, 2.0], [3.0]])  # ragged


# --- choices and numbers ------------------------------------------------------------------------


@pytest.mark.parametrize("side", ["up", "Left", None, 1])
def test_side_not_one_of_the_choices(side):
    with pytest.raises(ValueError, match=r"side must be one of 'left', 'right', 'both'; got " + re.escape(repr(side))):
        gdla.MatrixInverse(torch.eye(2), side=side)


def test_seed_must_be_an_integer():
    with pytest.raises(TypeError, match=r"seed must be an integer; got 'a' \(str\)"):
        gdla.MatrixInverse(torch.eye(2), seed="a")
    with pytest.raises(TypeError, match=r"seed must be an integer; got 1\.5"):
        gdla.LinearSystem(torch.eye(2), torch.ones(2), seed=1.5)


@pytest.mark.parametrize("name", ["tol", "residual_tol", "rtol"])
@pytest.mark.parametrize("value", [-1e-3, float("nan"), float("inf"), "1e-3"])
def test_tolerances_out_of_range(name, value):
    with pytest.raises(ValueError, match=rf"{name} must be a finite number >= 0 \(or None to disable it\); got "):
        gdla.solve(inverse(), **{name: value})


@pytest.mark.parametrize("value", [1, 2.0])
def test_rtol_of_one_or_more_would_stop_at_the_first_check(value):
    with pytest.raises(ValueError, match=r"rtol must be below 1 .* pass e\.g\. rtol=1e-6"):
        gdla.solve(inverse(), rtol=value)


@pytest.mark.parametrize("value", [0, -5, 2.5, True, None, "100"])
def test_max_steps_out_of_range(value):
    with pytest.raises(ValueError, match=r"max_steps must be a positive integer; got " + re.escape(repr(value))):
        gdla.solve(inverse(), max_steps=value)


@pytest.mark.parametrize("name, value, message", [
    ("stall_steps", -1, r"stall_steps must be an integer >= 0; got -1"),
    ("steps_per_block", 0, r"steps_per_block must be a positive integer.*; got 0"),
    ("rtol_every", 0, r"rtol_every must be a positive integer; got 0"),
    ("residual_every", 1.5, r"residual_every must be a positive integer; got 1\.5"),
])
def test_other_solver_settings_out_of_range(name, value, message):
    with pytest.raises(ValueError, match=message):
        gdla.solve(inverse(), **{name: value})


def test_problem_that_is_not_a_problem():
    with pytest.raises(TypeError, match=r"problem must be a torch_gdla Problem \(e\.g\. gdla\.MatrixInverse\(M\)\); got Tensor"):
        gdla.solve(torch.eye(2))


# --- the optimizer argument -------------------------------------------------------------------------


def test_optimizer_that_is_not_callable():
    with pytest.raises(TypeError, match=r"optimizer must be a callable taking the parameters, e\.g\. functools\.partial\(torch\.optim\.SGD, lr=0\.1\); got int"):
        gdla.solve(inverse(), optimizer=3)


def test_optimizer_instance_instead_of_a_factory():
    problem = inverse()
    with pytest.raises(TypeError, match=r"optimizer must be a callable .*got SGD \(an optimizer instance: pass the class or functools\.partial"):
        gdla.solve(problem, optimizer=torch.optim.SGD(problem.parameters(), lr=0.1))


def test_optimizer_that_does_not_return_an_optimizer():
    with pytest.raises(TypeError, match=r"optimizer must return a torch\.optim\.Optimizer when called with the parameters; got NoneType"):
        gdla.solve(inverse(), optimizer=lambda params: None)
    with pytest.raises(TypeError, match=r"optimizer must return a torch\.optim\.Optimizer .*got dict"):
        gdla.solve(inverse(), optimizer=lambda params: {"params": list(params), "lr": 0.1})


def test_optimizer_class_that_is_not_an_optimizer():
    with pytest.raises(TypeError, match=r"optimizer must build a torch\.optim\.Optimizer; Linear is not an optimizer class\. Pass e\.g\. torch\.optim\.Adam"):
        gdla.solve(inverse(), optimizer=functools.partial(torch.nn.Linear, 2))


def test_optimizer_that_cannot_take_the_parameters():
    with pytest.raises(TypeError, match=r"optimizer must accept the parameters as its one positional argument, like torch\.optim\.SGD\(params, \.\.\.\)"):
        gdla.solve(inverse(), optimizer=lambda: torch.optim.SGD)


def test_optimizer_checks_pass_for_valid_factories():
    for factory in (torch.optim.SGD, SGD, lambda params: torch.optim.Adam(params, lr=0.1), gdla.optim.ConjugateGradient):
        result = gdla.solve(inverse(), optimizer=factory, max_steps=2, tol=0)
        assert result.steps == 2


# --- SVD rank -----------------------------------------------------------------------------------------


@pytest.mark.skipif(not hasattr(gdla, "SVD"), reason="gdla.SVD is not available in this checkout")
@pytest.mark.parametrize("rank", [0, -1, 4, 2.5, True])
def test_svd_rank_out_of_range(rank):
    with pytest.raises(ValueError, match=r"rank must be an integer from 1 to min\(m, n\) = 3 for M of shape \(4, 3\); got "
                                         + re.escape(repr(rank)) + r" \(rank=None computes all 3"):
        gdla.SVD(torch.rand(4, 3), rank=rank)


# --- matrix files: never execute code -------------------------------------------------------------------


class _Payload:
    """Unpickling this would run a shell command that creates a marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pt_file_that_needs_pickle_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "EXECUTED"
    for name, payload in (("dict.pt", {"a": _Payload(marker)}), ("object.pt", _Payload(marker)),
                          ("mixed.pt", {"M": torch.eye(2), "x": _Payload(marker)})):
        path = tmp_path / name
        torch.save(payload, path)
        with pytest.raises(ValueError, match=rf"{re.escape(repr(str(path)))} is not a plain tensor file: torch\.load\(weights_only=True\) "
                                             r"refused it \(.*GLOBAL posix\.system.*\); matrix files are never unpickled, "
                                             r"so save the matrix with torch\.save\(tensor, path\)"):
            load(path)
        assert not marker.exists(), f"loading {name} executed code from the file"
    # torch's own refusal suggests weights_only=False; our message must not pass that on.
    with pytest.raises(ValueError) as info:
        load(tmp_path / "object.pt")
    assert "weights_only` set to `False`" not in str(info.value)


def test_npy_object_array_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "EXECUTED"
    path = tmp_path / "object.npy"
    np.save(path, np.array([_Payload(marker), 1.0], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match=r"could not be read as a plain \.npy array .*object arrays are refused \(loading them would unpickle\)"):
        load(path)
    assert not marker.exists()


def test_npy_that_is_a_pickle_without_header_is_refused(tmp_path):
    import pickle

    marker = tmp_path / "EXECUTED"
    path = tmp_path / "pickle.npy"
    path.write_bytes(pickle.dumps(_Payload(marker)))
    with pytest.raises(ValueError, match=r"is not a \.npy file \(no NumPy header\); save it with numpy\.save"):
        load(path)
    assert not marker.exists()


def test_unreadable_and_non_numeric_matrix_files(tmp_path):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x00\x01\x02 not a tensor")
    with pytest.raises(ValueError, match=r"garbage\.pt' is not a plain tensor file"):
        load(garbage)
    strings = tmp_path / "strings.npy"
    np.save(strings, np.array(["a", "b"]))
    with pytest.raises(ValueError, match=r"holds a <U1 array; a matrix file needs real numbers"):
        load(strings)
    several = tmp_path / "several.pt"
    torch.save({"A": torch.eye(2), "b": torch.ones(2)}, several)
    with pytest.raises(ValueError, match=r"holds a dict, not a tensor; save it with torch\.save\(tensor, path\)"):
        load(several)


def test_file_source_errors_name_the_argument_and_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"^M: matrix file '.*missing\.pt' does not exist"):
        gdla.MatrixInverse(File(str(tmp_path / "missing.pt")))
    rectangular = tmp_path / "rect.pt"
    torch.save(torch.rand(3, 4), rectangular)
    with pytest.raises(ValueError, match=r"M \(from File\(.*rect\.pt'\)\) must be square to have an inverse; got shape \(3, 4\)"):
        gdla.MatrixInverse(File(str(rectangular)))
    vector = tmp_path / "vector.npy"
    np.save(vector, np.ones(3))
    with pytest.raises(ValueError, match=r"A \(from File\(.*vector\.npy'\)\) must be a matrix .*got shape \(3,\)"):
        gdla.LinearSystem(File(str(vector)), torch.ones(3))
    with pytest.raises(ValueError, match=r"to match A \(from File\(.*rect\.pt'\)\) of shape \(3, 4\); got \(4,\)"):
        gdla.LinearSystem(File(str(rectangular)), torch.ones(4))
    integers = tmp_path / "int.pt"
    torch.save(torch.eye(2, dtype=torch.int32), integers)
    with pytest.raises(TypeError, match=r"M \(from File\(.*int\.pt'\)\) has dtype torch\.int32; .*set the source's dtype \(e\.g\. dtype: float64"):
        gdla.MatrixInverse(File(str(integers)))
    assert gdla.MatrixInverse(File(str(integers), dtype="float64")).M.dtype == torch.float64


# --- YAML configs -------------------------------------------------------------------------------------------


def write_config(tmp_path, body: str):
    path = tmp_path / "config.yaml"
    path.write_text(textwrap.dedent(body))
    return path


def run_cli(config, tmp_path):
    return GdlaCLI(args=["fit", "--config", str(config), "--trainer.logger", "false",
                         "--trainer.enable_progress_bar", "false", "--trainer.default_root_dir", str(tmp_path)])


PROBLEM = """\
model:
  problem:
    class_path: torch_gdla.MatrixInverse
    init_args:
      M: {matrix}
{extra}trainer:
  max_steps: 5
"""


def test_config_with_an_unknown_key(tmp_path, capsys):
    config = write_config(tmp_path, PROBLEM.format(matrix="[[2, 0], [0, 3]]", extra="  tolerance: 1e-6\n"))
    with pytest.raises(SystemExit) as exit_info:
        run_cli(config, tmp_path)
    assert exit_info.value.code == 2
    assert "does not accept option 'model.tolerance'" in capsys.readouterr().err


def test_config_with_an_unknown_problem_argument(tmp_path, capsys):
    config = write_config(tmp_path, PROBLEM.format(matrix="[[2, 0], [0, 3]]\n      sidee: left", extra=""))
    with pytest.raises(SystemExit) as exit_info:
        run_cli(config, tmp_path)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "torch_gdla.MatrixInverse" in err and "Option 'sidee' is not accepted" in err


def test_missing_config_file(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run_cli(tmp_path / "nowhere.yaml", tmp_path)
    assert exit_info.value.code == 2
    assert re.search(r"File does not exist: '.*nowhere\.yaml'", capsys.readouterr().err)


def file_config(tmp_path, matrix_path):
    matrix = f"\n        class_path: torch_gdla.matrices.File\n        init_args: {{path: {matrix_path}}}"
    return write_config(tmp_path, PROBLEM.format(matrix=matrix, extra=""))


def cli_usage_error(config, tmp_path, capsys) -> str:
    """The CLI refuses a config whose problem cannot be built: exit 2, one clear message."""
    with pytest.raises(SystemExit) as exit_info:
        run_cli(config, tmp_path)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


def test_config_whose_matrix_file_is_missing(tmp_path, capsys):
    err = cli_usage_error(file_config(tmp_path, tmp_path / "absent.npy"), tmp_path, capsys)
    assert re.search(r"M: matrix file '.*absent\.npy' does not exist \(check the path", err)


def test_config_whose_matrix_file_is_unreadable(tmp_path, capsys):
    path = tmp_path / "broken.npy"
    path.write_text("1, 2\n3, 4\n")
    err = cli_usage_error(file_config(tmp_path, path), tmp_path, capsys)
    assert re.search(r"M: '.*broken\.npy' is not a \.npy file \(no NumPy header\)", err)


def test_config_whose_matrix_file_has_the_wrong_shape(tmp_path, capsys):
    path = tmp_path / "wide.csv"
    path.write_text("1, 2, 3\n4, 5, 6\n")
    err = cli_usage_error(file_config(tmp_path, path), tmp_path, capsys)
    assert re.search(r"M \(from File\(.*wide\.csv'\)\) must be square to have an inverse; got shape \(2, 3\)", err)


def test_meta_tensors_are_refused_up_front():
    with pytest.raises(ValueError, match=r"M is a meta tensor \(a shape without values\)"):
        gdla.MatrixInverse(torch.empty(3, 3, device="meta"))


def test_a_non_leaf_input_that_requires_grad_is_used_detached():
    M = torch.eye(3, dtype=torch.float64, requires_grad=True)
    problem = gdla.MatrixInverse(M * 2)  # a non-leaf: backward through it twice used to fail
    result = gdla.solve(problem)
    assert result.converged and M.grad is None
    assert torch.allclose(result.solution, torch.eye(3, dtype=torch.float64) / 2)
