"""Frozen parameters (``requires_grad = False``): no gradient, no gradient work, the rest unchanged."""
import numpy as np
import pytest

import nnumpy as nnp
from nnumpy import backend
from nnumpy.backend import numba_ops, numpy_ops

BACKENDS = backend.available_backends()


def lenet_like(seed=0):
    f = np.float64
    return nnp.Sequential(nnp.Conv2d(1, 4, 3, rng=seed, dtype=f), nnp.ReLU(), nnp.MaxPool2d(2),
                          nnp.Conv2d(4, 5, 2, rng=seed + 1, dtype=f), nnp.Tanh(), nnp.Flatten(),
                          nnp.Linear(5 * 2 * 2, 8, rng=seed + 2, dtype=f), nnp.Sigmoid(),
                          nnp.BatchNorm1d(8, dtype=f), nnp.Linear(8, 3, rng=seed + 3, dtype=f))


FREEZE = {
    "first conv": ["0.weight", "0.bias"],
    "both convs": ["0.weight", "0.bias", "3.weight", "3.bias"],
    "a middle weight only": ["6.weight"],
    "a bias only": ["3.bias", "9.bias"],
    "batch norm": ["8.weight", "8.bias"],
    "everything": None,
}


@pytest.mark.parametrize("be", BACKENDS)
@pytest.mark.parametrize("input_grad", [False, True])
@pytest.mark.parametrize("which", list(FREEZE))
def test_frozen_parameters_get_no_gradient_and_the_others_are_unchanged(be, input_grad, which, rng):
    x = rng.standard_normal((6, 1, 9, 9))
    dy = rng.standard_normal((6, 3))
    with backend.use(be):
        ref, model = lenet_like(), lenet_like()
        names = FREEZE[which] or [n for n, _ in model.named_parameters()]
        params = dict(model.named_parameters())
        for n in names:
            params[n].requires_grad = False
        for m in (ref, model):
            m.zero_grad()
            m(x)
        dx_ref = ref.backward(dy, input_grad=input_grad)
        dx = model.backward(dy, input_grad=input_grad)
    if input_grad:
        np.testing.assert_allclose(dx, dx_ref, rtol=1e-12, atol=1e-14)
    else:
        assert dx is None
    for n, p in model.named_parameters():
        if n in names:
            assert not np.any(p.grad), n                     # exactly zero, never touched
        else:
            np.testing.assert_allclose(p.grad, dict(ref.named_parameters())[n].grad, rtol=1e-12, atol=1e-14,
                                       err_msg=n)
    with pytest.raises(RuntimeError, match="without a preceding forward"):
        model.backward(dy)                                   # the caches were consumed (or dropped)


@pytest.mark.parametrize("be", BACKENDS)
def test_a_frozen_feature_extractor_is_not_back_propagated(be, rng, monkeypatch):
    """With the convolutions frozen and no input gradient wanted, backward ends at the first
    trainable layer: the convolution's backward kernels are never called."""
    def boom(*a, **k):
        raise AssertionError("a frozen layer was back-propagated")
    for mod in (numba_ops, numpy_ops):
        for name in ("conv2d_act_backward", "conv2d_act_pool_backward"):
            if hasattr(mod, name):
                monkeypatch.setattr(mod, name, boom)
    x = rng.standard_normal((4, 1, 9, 9))
    with backend.use(be):
        model = lenet_like()
        model[0].requires_grad_(False)
        model[3].requires_grad_(False)
        model(x)
        model.backward(rng.standard_normal((4, 3)), input_grad=False)
        assert np.any(model[6].weight.grad)
        model[3].weight.requires_grad = True                 # unfreeze: now the kernel is needed
        model(x)
        with pytest.raises(AssertionError, match="frozen layer"):
            model.backward(rng.standard_normal((4, 3)), input_grad=False)


@pytest.mark.parametrize("be", BACKENDS)
def test_a_frozen_weight_alone(be, rng):
    """Linear with a frozen weight computes dx and db, and leaves dW alone."""
    with backend.use(be):
        lin = nnp.Linear(5, 4, rng=0, dtype=np.float64)
        lin.weight.requires_grad = False
        x, dy = rng.standard_normal((7, 5)), rng.standard_normal((7, 4))
        lin(x)
        dx = lin.backward(dy)
    np.testing.assert_allclose(dx, dy @ lin.weight.data, rtol=1e-13)
    np.testing.assert_allclose(lin.bias.grad, dy.sum(0), rtol=1e-13)
    assert not np.any(lin.weight.grad)


def test_requires_grad_is_a_checked_flag_and_shows_in_repr():
    p = nnp.Parameter(np.zeros(3))
    assert p.requires_grad is True
    with pytest.raises(nnp.ArgumentTypeError, match="requires_grad must be True or False"):
        p.requires_grad = "no"
    p.requires_grad = np.bool_(False)
    assert p.requires_grad is False and "requires_grad=False" in repr(p)
    model = nnp.MLP([3, 4, 2])
    assert model.requires_grad_(False) is model
    assert not any(q.requires_grad for q in model.parameters())
    with pytest.raises(nnp.ArgumentTypeError, match="requires_grad"):
        model.requires_grad_(None)


def test_frozen_layers_match_torch(torch, rng):
    """Freezing the first layer in both frameworks gives the same gradients to the rest."""
    from nnumpy import interop
    model = nnp.MLP([6, 5, 4, 3], activation="tanh", dtype=np.float64, rng=3)
    tmodel = interop.to_torch(model)
    model[0].requires_grad_(False)
    for p in tmodel[0].parameters():
        p.requires_grad_(False)
    x, y = rng.standard_normal((8, 6)), rng.integers(0, 3, 8)
    crit = nnp.CrossEntropyLoss()
    crit(model(x), y)
    model.backward(crit.backward())
    torch.nn.functional.cross_entropy(tmodel(torch.from_numpy(x)), torch.from_numpy(y)).backward()
    for (n, p), tp in zip(model.named_parameters(), tmodel.parameters()):
        if tp.grad is None:
            assert not p.requires_grad and not np.any(p.grad), n
        else:
            np.testing.assert_allclose(p.grad, tp.grad.numpy(), rtol=1e-12, atol=1e-15, err_msg=n)
