"""gdla.parametrizations.Stiefel: generators mapped to orthonormal columns, as a module and a parametrisation."""
import pytest
import torch
from torch.nn.utils import parametrize

import torch_gdla as gdla
from torch_gdla.parametrizations import Stiefel, orthonormal_map, seeded_orthogonal, seeded_orthonormal


@pytest.mark.parametrize("m, k", [(10, 3), (6, 3), (5, 5)])
def test_module_is_the_map(m, k):
    stiefel = Stiefel.seeded(m, seed=4, dtype=torch.float64)
    X = torch.randn(m, k, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    Q = stiefel(X)
    assert torch.equal(Q, orthonormal_map(stiefel.base, X))
    torch.testing.assert_close(Q.mT @ Q, torch.eye(k, dtype=torch.float64), rtol=0, atol=1e-12)
    assert torch.equal(stiefel(torch.zeros(m, k, dtype=torch.float64)), stiefel.base[:, :k])


def test_seeded_base_is_the_svd_one():
    # SVD draws U's base first from the same seed and starts at its first k columns (computed
    # from the draw's first k columns, equal to rounding): the module reproduces it
    M = torch.rand(5, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    svd = gdla.SVD(M, seed=11)
    torch.testing.assert_close(Stiefel.seeded(5, seed=11, dtype=torch.float64).base[:, :4], svd.U_base, rtol=0, atol=1e-15)
    generator = torch.Generator().manual_seed(11)
    torch.testing.assert_close(seeded_orthogonal(torch.Size((5, 5)), generator, M)[:, :4], svd.U_base, rtol=0, atol=1e-15)
    generator = torch.Generator().manual_seed(11)
    assert torch.equal(seeded_orthonormal(torch.Size((5, 5)), 4, generator, M), svd.U_base)
    assert torch.equal(seeded_orthonormal(torch.Size((4, 4)), 4, generator, M), svd.V_base)  # drawn second


def test_as_a_parametrization_sgd_stays_on_the_manifold():
    layer = torch.nn.Linear(3, 8, bias=False, dtype=torch.float64)  # weight (8, 3)
    with torch.no_grad():
        layer.weight.zero_()  # the generator: start at the base's first 3 columns
    parametrize.register_parametrization(layer, "weight", Stiefel.seeded(8, seed=0, dtype=torch.float64))
    target = torch.randn(8, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    assert [name for name, _ in layer.named_parameters()] == ["parametrizations.weight.original"]
    optimizer = torch.optim.SGD(layer.parameters(), lr=0.05, momentum=0.9)

    def closure():
        optimizer.zero_grad()
        loss = (layer.weight - target).square().sum()
        loss.backward()
        return loss

    losses = [float(optimizer.step(closure).detach()) for _ in range(60)]
    assert losses[-1] < losses[0]
    W = layer.weight.detach()
    torch.testing.assert_close(W.mT @ W, torch.eye(3, dtype=torch.float64), rtol=0, atol=1e-12)
    # the nearest orthonormal matrix to the target is its polar factor: L-BFGS finishes there
    optimizer = torch.optim.LBFGS(layer.parameters(), max_iter=100, tolerance_grad=0.0, tolerance_change=0.0,
                                  line_search_fn="strong_wolfe")
    optimizer.step(closure)
    U, _, Vh = torch.linalg.svd(target, full_matrices=False)
    torch.testing.assert_close(layer.weight.detach(), U @ Vh, rtol=0, atol=1e-8)


def test_batched_and_errors():
    stiefel = Stiefel.seeded(6, seed=2, batch_shape=(2,), dtype=torch.float64)
    Q = stiefel(torch.randn(2, 6, 2, generator=torch.Generator().manual_seed(3), dtype=torch.float64))
    torch.testing.assert_close(Q.mT @ Q, torch.eye(2, dtype=torch.float64).expand(2, 2, 2), rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="base must be a square"):
        Stiefel(torch.zeros(4, 3))
    with pytest.raises(ValueError, match=r"generator must have shape \(…, 6, k\)"):
        stiefel(torch.zeros(2, 5, 2))
