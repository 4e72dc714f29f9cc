"""nnumpy against PyTorch: gradients, optimizers, schedulers, training and weight exchange."""
import subprocess
import sys

import numpy as np
import pytest

import nnumpy as nnp
from nnumpy.interop import compare_with_torch, from_torch, to_torch

ACTS = ["relu", "leaky_relu", "sigmoid", "tanh", "identity"]


def check(model, x, y, tol, context="", **kw):
    """compare_with_torch at tolerance ``tol``; the report's own verdict decides."""
    report = compare_with_torch(model, x, y, tolerance=tol, **kw)
    assert report, f"{context}\n{report}"
    return report


LAYERS = {
    "linear": lambda: nnp.Linear(9, 7, rng=0),
    "linear-nobias": lambda: nnp.Linear(9, 7, bias=False, rng=1),
    "relu": nnp.ReLU, "leaky_relu": lambda: nnp.LeakyReLU(0.05), "sigmoid": nnp.Sigmoid,
    "tanh": nnp.Tanh, "identity": nnp.Identity, "dropout-eval": lambda: nnp.Dropout(0.3),
}


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-6), (np.float32, 1e-4)], ids=["f64", "f32"])
@pytest.mark.parametrize("name", list(LAYERS))
def test_each_layer_matches_torch(torch, name, dtype, tol):
    layer = LAYERS[name]()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 9))
    out_dim = layer.out_features if isinstance(layer, nnp.Linear) else 9
    target = rng.standard_normal((6, out_dim))          # MSE: a random upstream gradient
    check(nnp.Sequential(layer), x, target, tol, loss=nnp.MSELoss(), dtype=dtype)


def test_flatten_matches_torch(torch):
    model = nnp.Sequential(nnp.Flatten(), nnp.Linear(12, 4, rng=0))
    x = np.random.default_rng(0).standard_normal((5, 3, 4))
    check(model, x, np.arange(5) % 4, 1e-6)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("loss_cls", [nnp.CrossEntropyLoss, nnp.MSELoss])
def test_losses_match_torch(torch, loss_cls, reduction):
    rng = np.random.default_rng(1)
    z = 4 * rng.standard_normal((8, 5))
    y = rng.integers(0, 5, 8) if loss_cls is nnp.CrossEntropyLoss else rng.standard_normal((8, 5))
    for dtype, tol in ((np.float64, 1e-6), (np.float32, 1e-4)):
        check(nnp.Sequential(nnp.Identity()), z, y, tol, loss=loss_cls(reduction), dtype=dtype)


def random_mlp(seed):
    rng = np.random.default_rng(seed)
    depth = 1 + seed % 6                                 # 1..6 linear layers
    sizes = [int(s) for s in rng.integers(1, 301, depth + 1)]
    sizes[-1] = max(sizes[-1], 2)
    acts = [ACTS[(seed + i) % len(ACTS)] for i in range(depth - 1)]
    bias = bool(seed % 3)
    model = nnp.MLP(sizes, activation=acts, bias=bias, rng=seed)
    return model, sizes, acts, bias, rng


def test_random_mlps_match_torch(torch):
    worst = {np.float64: 0.0, np.float32: 0.0}
    for seed in range(36):
        model, sizes, acts, bias, rng = random_mlp(seed)
        x = rng.standard_normal((int(rng.integers(1, 33)), sizes[0]))
        y = rng.integers(0, sizes[-1], len(x))
        for dtype, tol in ((np.float64, 1e-6), (np.float32, 1e-4)):
            r = check(model, x, y, tol, f"sizes {sizes}, activations {acts}, bias {bias}", dtype=dtype)
            worst[dtype] = max(worst[dtype], r.max_rel_error)      # finite: the report passed
    print(f"\nworst relative error over 36 random MLPs: float64 {worst[np.float64]:.2e}, "
          f"float32 {worst[np.float32]:.2e}")
    assert worst[np.float64] < 1e-12          # what float64 agreement looks like in practice


OPTIMIZERS = {
    "sgd": (lambda ps: nnp.optim.SGD(ps, lr=0.1), "SGD", dict(lr=0.1)),
    "sgd-momentum": (lambda ps: nnp.optim.SGD(ps, lr=0.05, momentum=0.9, dampening=0.1), "SGD",
                     dict(lr=0.05, momentum=0.9, dampening=0.1)),
    "sgd-nesterov-wd": (lambda ps: nnp.optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
                        "SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3)),
    "adam": (lambda ps: nnp.optim.Adam(ps, lr=1e-2), "Adam", dict(lr=1e-2)),
    "adam-wd-amsgrad": (lambda ps: nnp.optim.Adam(ps, lr=1e-2, betas=(0.8, 0.99), weight_decay=1e-2, amsgrad=True),
                        "Adam", dict(lr=1e-2, betas=(0.8, 0.99), weight_decay=1e-2, amsgrad=True)),
    "adamw": (lambda ps: nnp.optim.AdamW(ps, lr=1e-2, weight_decay=0.1), "AdamW", dict(lr=1e-2, weight_decay=0.1)),
}


def step_both(torch, model, tmodel, opt, topt, x, y):
    """One cross-entropy training step in each framework on the same batch."""
    crit = nnp.CrossEntropyLoss()
    opt.zero_grad()
    crit(model(x), y)
    model.backward(crit.backward())
    opt.step()
    topt.zero_grad()
    torch.nn.functional.cross_entropy(tmodel(torch.from_numpy(x)), torch.from_numpy(y)).backward()
    topt.step()


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_optimizers_match_torch_over_20_steps(torch, name):
    make, tname, kwargs = OPTIMIZERS[name]
    model = nnp.MLP([20, 16, 12, 5], activation="tanh", dtype=np.float64, rng=0)
    tmodel = to_torch(model)
    opt, topt = make(model.parameters()), getattr(torch.optim, tname)(tmodel.parameters(), **kwargs)
    rng = np.random.default_rng(1)
    for _ in range(20):
        step_both(torch, model, tmodel, opt, topt, rng.standard_normal((16, 20)), rng.integers(0, 5, 16))
    for k, v in tmodel.state_dict().items():
        np.testing.assert_allclose(model.state_dict()[k], v.numpy(), rtol=0, atol=1e-10, err_msg=k)


@pytest.mark.parametrize("kind", ["step", "cosine"])
def test_schedulers_match_torch(torch, kind):
    p, tp = nnp.Parameter(np.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    opt, topt = nnp.optim.SGD([p], lr=0.3), torch.optim.SGD([tp], lr=0.3)
    if kind == "step":
        s, ts = nnp.optim.StepLR(opt, 3, gamma=0.5), torch.optim.lr_scheduler.StepLR(topt, 3, gamma=0.5)
    else:
        s = nnp.optim.CosineAnnealingLR(opt, T_max=7, eta_min=0.01)
        ts = torch.optim.lr_scheduler.CosineAnnealingLR(topt, T_max=7, eta_min=0.01)
    for epoch in range(30):
        assert opt.param_groups[0]["lr"] == pytest.approx(topt.param_groups[0]["lr"], rel=1e-14, abs=1e-16), epoch
        opt.step()
        topt.step()
        s.step()
        ts.step()
    assert s.get_last_lr() == pytest.approx(ts.get_last_lr(), rel=1e-14)


def test_one_epoch_on_real_mnist_matches_torch(torch, mnist_dir):
    (x, y), _ = nnp.datasets.load_mnist(mnist_dir, download=False, flatten=True, scale=True)
    x, y = x[:2000].astype(np.float64), y[:2000]
    model = nnp.MLP([784, 64, 32, 10], dtype=np.float64, rng=0)
    tmodel = to_torch(model)
    opt = nnp.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    topt = torch.optim.SGD(tmodel.parameters(), lr=0.1, momentum=0.9)
    for xb, yb in nnp.iterate_minibatches(x, y, 64, rng=0):
        step_both(torch, model, tmodel, opt, topt, xb, yb)
    worst = max(np.abs(model.state_dict()[k] - v.numpy()).max() for k, v in tmodel.state_dict().items())
    assert worst <= 1e-8, worst
    moved = np.abs(model[0].weight.data - nnp.MLP([784, 64, 32, 10], dtype=np.float64, rng=0)[0].weight.data).max()
    assert moved > 1e-3                         # training really happened


def test_dropout_with_the_same_mask_matches_torch(torch):
    p = 0.4
    x = np.random.default_rng(0).standard_normal((7, 11))
    dy = np.random.default_rng(1).standard_normal((7, 11))
    torch.manual_seed(123)
    xt = torch.tensor(x, requires_grad=True)
    yt = torch.nn.functional.dropout(xt, p, training=True)
    yt.backward(torch.from_numpy(dy))
    torch.manual_seed(123)                      # the same draw again, on ones, reveals the mask
    mask = torch.nn.functional.dropout(torch.ones(7, 11, dtype=torch.float64), p, training=True).numpy() != 0
    assert 0 < mask.mean() < 1
    drop = nnp.Dropout(p)
    y = drop(x, mask=mask)
    dx = drop.backward(dy)
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-15, atol=0)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-15, atol=0)


def assert_same_weights(a_state, b_state):
    assert list(a_state) == list(b_state)
    for k in a_state:
        a = a_state[k].detach().numpy() if hasattr(a_state[k], "detach") else a_state[k]
        b = b_state[k].detach().numpy() if hasattr(b_state[k], "detach") else b_state[k]
        assert a.dtype == b.dtype and np.array_equal(a, b), k


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_round_trips_are_exact(torch, dtype):
    m = nnp.MLP([30, 20, 10, 5], activation=["sigmoid", "leaky_relu"], dropout=0.2, dtype=dtype, rng=3)
    assert_same_weights(from_torch(to_torch(m)).state_dict(), m.state_dict())
    torch.manual_seed(0)
    tdt = torch.float32 if dtype == np.float32 else torch.float64
    tm = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(30, 20, dtype=tdt), torch.nn.Tanh(),
                             torch.nn.Linear(20, 5, bias=False, dtype=tdt), torch.nn.Identity())
    assert_same_weights(to_torch(from_torch(tm)).state_dict(), tm.state_dict())
    # a torch model's exact initial weights, in nnumpy
    assert_same_weights(from_torch(tm).state_dict(), tm.state_dict())
    x = np.random.default_rng(0).standard_normal((4, 5, 6)).astype(dtype)
    np.testing.assert_allclose(from_torch(tm)(x), tm(torch.from_numpy(x)).detach().numpy(),
                               rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-7 if dtype == np.float32 else 0)


def test_state_dict_from_torch_loads_directly(torch):
    torch.manual_seed(1)
    tm = torch.nn.Sequential(torch.nn.Linear(784, 100), torch.nn.ReLU(), torch.nn.Linear(100, 10))
    m = nnp.MLP([784, 100, 10], rng=0)
    m.load_state_dict(tm.state_dict())          # tensors accepted, no transposes, no renames
    assert_same_weights(m.state_dict(), tm.state_dict())


def ks_statistic(a, b):
    a, b = np.sort(a), np.sort(b)
    grid = np.concatenate([a, b])
    return np.abs(np.searchsorted(a, grid, side="right") / len(a) - np.searchsorted(b, grid, side="right") / len(b)).max()


def test_default_init_has_torchs_distribution(torch):
    torch.manual_seed(0)
    t = torch.nn.Linear(300, 200)
    ours = nnp.Linear(300, 200, rng=0)
    for a, b in ((ours.weight.data, t.weight), (ours.bias.data, t.bias)):
        b = b.detach().numpy().ravel()
        a = a.ravel()
        # two-sample Kolmogorov-Smirnov at alpha = 0.001: D < 1.95 sqrt(2/n)
        assert ks_statistic(a, b) < 1.95 * np.sqrt(2 / min(len(a), len(b)))
        bound = 1 / np.sqrt(300)
        assert max(np.abs(a).max(), np.abs(b).max()) <= bound


def test_unsupported_layers_are_named(torch):
    with pytest.raises(TypeError, match=r"torch.nn.Conv1d at '1'"):
        from_torch(torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.Conv1d(1, 1, 3)))
    with pytest.raises(TypeError, match="Mish"):
        from_torch(torch.nn.Mish())

    class Custom(nnp.Module):
        pass
    with pytest.raises(TypeError, match="no PyTorch equivalent for Custom at '1'"):
        to_torch(nnp.Sequential(nnp.Linear(2, 2, rng=0), Custom()))


def test_missing_torch_gives_install_advice(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ImportError, match=r'pip install -e "\.\[torch\]"'):
        to_torch(nnp.MLP([2, 2]))


def test_gradcheck_command_with_torch(torch):
    r = subprocess.run([sys.executable, "-m", "nnumpy", "gradcheck", "--arch", "30-20-10", "--batch", "4",
                        "--torch", "--dtype", "float64", "float32"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("PASSED") == 3 and "nnumpy vs PyTorch" in r.stdout
    r = subprocess.run([sys.executable, "-m", "nnumpy", "gradcheck", "--arch", "30"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "at least two" in r.stderr


def test_the_new_activations_cross_to_torch_and_back(torch):
    """to_torch/from_torch carry GELU, ELU, SiLU, Softplus, Hardtanh, Softmax and LogSoftmax with their settings."""
    from nnumpy import interop
    f = np.float64
    model = nnp.Sequential(nnp.Linear(5, 6, dtype=f, rng=0), nnp.GELU(approximate="tanh"), nnp.Linear(6, 6, dtype=f, rng=1),
                           nnp.ELU(0.5), nnp.Softplus(2.0, 5.0), nnp.Hardtanh(-2.0, 2.0), nnp.SiLU(), nnp.GELU(),
                           nnp.Linear(6, 3, dtype=f, rng=2), nnp.Softmax(dim=1), nnp.LogSoftmax(dim=-1))
    t = interop.to_torch(model)
    assert [type(m).__name__ for m in t] == [type(m).__name__ for m in model]
    assert (t[1].approximate, t[3].alpha, t[4].beta, t[4].threshold, t[5].min_val, t[5].max_val, t[9].dim) == \
        ("tanh", 0.5, 2.0, 5.0, -2.0, 2.0, 1)
    x = np.random.default_rng(0).standard_normal((4, 5))
    np.testing.assert_allclose(t(torch.from_numpy(x)).detach().numpy(), model(x), rtol=1e-12, atol=1e-14)
    back = interop.from_torch(t)
    np.testing.assert_array_equal(back(x), model(x))
    report = interop.compare_with_torch(nnp.MLP([5, 7, 7, 3], activation=["gelu", "softplus"], dtype=f, rng=0), x,
                                        np.array([0, 1, 2, 0]))
    assert report.ok, report
