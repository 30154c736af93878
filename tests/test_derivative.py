"""Derivatives by autograd (the gradients tutorial's "Gradient Computation", the matrix-operations tutorial's
part 1)."""
import math

import pytest
import torch

import torch_gdla as gdla


def test_partial_derivatives_of_x_y5_at_3_7():
    dx, dy = gdla.gradient(lambda x, y: x * y**5, 3.0, 7.0)
    assert dx.item() == 7**5 == 16807
    assert dy.item() == 5 * 3 * 7**4 == 36015


def test_gradient_of_one_tensor_is_a_tensor_and_leaves_the_input_alone():
    x = torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64, requires_grad=True)
    g = gdla.gradient(lambda v: (v**3).sum(), x)
    assert isinstance(g, torch.Tensor) and g.dtype == torch.float64 and not g.requires_grad
    assert torch.equal(g, 3 * x.detach() ** 2)
    assert x.grad is None


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_derivative_of_sin_is_cos_on_a_grid(dtype):
    x = torch.linspace(-2 * math.pi, 2 * math.pi, 201, dtype=dtype)
    d = gdla.derivative(torch.sin, x)
    assert d.dtype == dtype and d.shape == x.shape and not d.requires_grad
    assert torch.allclose(d, torch.cos(x), atol=1e-6 if dtype == torch.float32 else 1e-14)


def test_seed_polynomial_first_second_and_third_derivatives():
    x = torch.linspace(-3, 3, 13, dtype=torch.float64)
    f = lambda t: t * t + 4.0  # noqa: E731
    assert torch.equal(gdla.derivative(f, x, order=0), x * x + 4)
    assert torch.equal(gdla.derivative(f, x, order=1), 2 * x)
    assert torch.equal(gdla.derivative(f, x, order=2), torch.full_like(x, 2.0))
    assert torch.equal(gdla.derivative(f, x, order=3), torch.zeros_like(x))  # f'' is constant


def test_third_derivative_of_sin_is_minus_cos():
    x = torch.linspace(-3, 3, 61, dtype=torch.float64)
    assert torch.allclose(gdla.derivative(torch.sin, x, order=3), -torch.cos(x), atol=1e-14)
    assert torch.allclose(gdla.derivative(torch.sin, x, order=4), torch.sin(x), atol=1e-14)


def test_python_numbers_and_lists():
    assert gdla.derivative(torch.exp, [0.0, 1.0]).tolist() == pytest.approx([1.0, math.e])


def test_clear_errors():
    with pytest.raises(ValueError, match="order must be an integer >= 0"):
        gdla.derivative(torch.sin, torch.zeros(3), order=-1)
    with pytest.raises(ValueError, match="elementwise.*gdla.gradient"):
        gdla.derivative(lambda t: t.sum(), torch.zeros(3))
    with pytest.raises(ValueError, match="scalar tensor.*gdla.derivative"):
        gdla.gradient(torch.sin, torch.zeros(3))
    with pytest.raises(TypeError, match="dtype torch.int64"):
        gdla.derivative(torch.sin, torch.arange(3))
    with pytest.raises(TypeError, match="callable"):
        gdla.derivative("sin", torch.zeros(3))
