"""Convolution and pooling against PyTorch: values and every gradient on random shapes (float64 within
1e-12, float32 within 1e-5, relative, nnumpy.report's measure), max-pool indices, a whole network,
state dicts both ways, default initialisation, repr and attributes.  Both backends (test_conv's fixture)."""
import json
import math

import numpy as np
import pytest

import nnumpy as nnp
from nnumpy import functional as F
from test_conv import TOL, on_backend, pool_case, random_conv_case, rel_err, spaced  # noqa: F401 (fixture)

# torch's note that it pads a copy for padding="same" with an even kernel: not ours to act on
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same'")


def torch_grads(torch, layer, x, dy, dtype):
    """y, dx and the parameter gradients of a torch layer at x with upstream gradient dy."""
    xt = torch.tensor(x.astype(dtype), requires_grad=True)
    yt = layer(xt)
    yt = yt[0] if isinstance(yt, tuple) else yt
    yt.backward(torch.tensor(dy.astype(dtype)))
    return [yt.detach().numpy(), xt.grad.numpy()] + [p.grad.numpy() for p in layer.parameters()]


def conv_module_case(torch, seed, dtype):
    """(nnumpy Conv2d, torch Conv2d with the same weights, x, dy) for random_conv_case(seed), the
    padding as PyTorch's module takes it (an asymmetric one becomes its (top, left) pair)."""
    x, W, b, kw, rng = random_conv_case(seed)
    if isinstance(kw["padding"], tuple) and isinstance(kw["padding"][0], tuple):
        kw["padding"] = (kw["padding"][0][0], kw["padding"][1][0])
    args = dict(in_channels=x.shape[1], out_channels=W.shape[0], kernel_size=W.shape[2:], bias=b is not None, **kw)
    torch.manual_seed(seed)
    tm = torch.nn.Conv2d(**args, dtype=torch.float32 if dtype == np.float32 else torch.float64)
    m = nnp.nn.Conv2d(**args, dtype=dtype, init=False)
    m.load_state_dict(tm.state_dict())                            # strict: same keys, shapes, layout
    x = x[0] if seed % 7 == 3 else x                              # now and then an unbatched (C, H, W) input
    y = m(x.astype(dtype))
    return m, tm, x, rng.standard_normal(y.shape)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_conv2d_matches_torch_on_random_shapes(torch, dtype):
    worst = dict.fromkeys(["y", "dx", "dW", "db"], 0.0)
    for seed in range(40):
        m, tm, x, dy = conv_module_case(torch, seed, dtype)
        m.clear_cache()
        got = [m(x.astype(dtype))]
        got.append(m.backward(dy.astype(dtype)))
        got += [p.grad for p in m.parameters()]
        want = torch_grads(torch, tm, x, dy, dtype)
        assert len(got) == len(want) and all(g.dtype == dtype for g in got)
        for name, g, t in zip(worst, got, want):
            e = rel_err(g, t)
            assert e <= TOL[dtype], f"seed {seed}: {m!r} on {x.shape}: {name} off by {e:.2e}"
            worst[name] = max(worst[name], e)
    print(f"\nConv2d vs torch, worst relative error over 40 random layers ({np.dtype(dtype)}): "
          + ", ".join(f"{k} {v:.1e}" for k, v in worst.items()))


def pool_pair(torch, kind, seed):
    """(nnumpy pool, torch pool with the same arguments, input shape) for pool_case(seed)."""
    rng, k, s, p, d, ceil, shape = pool_case(seed)
    if kind == "max":
        args = dict(kernel_size=k, stride=s, padding=p, dilation=d, ceil_mode=ceil, return_indices=True)
        return nnp.nn.MaxPool2d(**args), torch.nn.MaxPool2d(**args), shape
    if kind == "avg":
        args = dict(kernel_size=k, stride=s, padding=p, ceil_mode=ceil, count_include_pad=seed % 3 != 1,
                    divisor_override=(None, None, 3)[seed % 3])
        return nnp.nn.AvgPool2d(**args), torch.nn.AvgPool2d(**args), shape
    out = [(3, 4), 5, (None, 2), (7, 1), 1][seed % 5]
    return nnp.nn.AdaptiveAvgPool2d(out), torch.nn.AdaptiveAvgPool2d(out), shape


@pytest.mark.parametrize("kind", ["max", "avg", "adaptive"])
def test_pooling_matches_torch_on_random_shapes(torch, kind):
    worst = {np.float64: 0.0, np.float32: 0.0}
    for seed in range(40):
        m, tm, shape = pool_pair(torch, kind, seed)
        x = spaced(shape, np.random.default_rng(seed))
        x = x[0] if seed % 4 == 3 else x                             # unbatched now and then
        for dtype in (np.float64, np.float32):
            y = m(x.astype(dtype))
            idx = None
            if kind == "max":
                y, idx = y
            dy = np.random.default_rng(seed + 1).standard_normal(y.shape)
            dx = m.backward(dy.astype(dtype))
            want = torch_grads(torch, tm, x, dy, dtype)
            if kind == "max":
                t_idx = tm(torch.tensor(x.astype(dtype)))[1].numpy()
                wrong = np.argwhere(idx != t_idx)
                assert idx.shape == t_idx.shape and not wrong.size, \
                    f"seed {seed}: {m!r} on {x.shape}: {len(wrong)} indices differ from torch's, first at {wrong[:1]}"
            for name, g, t in zip(("y", "dx"), (y, dx), want):
                assert g.dtype == dtype and rel_err(g, t) <= TOL[dtype], \
                    f"seed {seed}: {m!r} on {x.shape}: {name} off by {rel_err(g, t):.2e}"
                worst[dtype] = max(worst[dtype], rel_err(g, t))
    print(f"\n{kind} pooling vs torch, worst relative error over 40 layers: float64 {worst[np.float64]:.1e}, "
          f"float32 {worst[np.float32]:.1e}")


def test_max_pool_indices_match_torch_on_nan_inf_and_ties(torch):
    rng = np.random.default_rng(0)
    x = np.round(rng.standard_normal((2, 3, 9, 8)), 0)               # many ties
    x[0, 0, 2, 3] = x[0, 0, 2, 5] = np.nan
    x[1, 2] = -np.inf
    x[1, 1, :3] = np.inf
    for args in (dict(kernel_size=3, stride=1, padding=1), dict(kernel_size=(2, 4), stride=(3, 1), padding=(1, 2),
                                                              dilation=(3, 1), ceil_mode=True)):
        y, idx = F.max_pool2d_forward(x, **args)
        yt, it = torch.nn.functional.max_pool2d(torch.tensor(x), **args, return_indices=True)
        assert np.array_equal(y, yt.numpy(), equal_nan=True) and np.array_equal(idx, it.numpy())


def test_a_network_matches_torch(torch):
    """Conv -> ReLU -> MaxPool -> Conv (groups) -> AvgPool -> AdaptiveAvgPool -> Flatten -> Linear, one step."""
    tnn = torch.nn
    torch.manual_seed(0)
    tm = tnn.Sequential(tnn.Conv2d(3, 4, 3, padding="same"), tnn.ReLU(), tnn.MaxPool2d(2, ceil_mode=True),
                        tnn.Conv2d(4, 6, 2, stride=1, groups=2), tnn.AvgPool2d(2, 1), tnn.AdaptiveAvgPool2d(2),
                        tnn.Flatten(), tnn.Linear(24, 5)).double()
    m = nnp.Sequential(nnp.nn.Conv2d(3, 4, 3, padding="same", init=False), nnp.ReLU(),
                       nnp.nn.MaxPool2d(2, ceil_mode=True), nnp.nn.Conv2d(4, 6, 2, groups=2, init=False),
                       nnp.nn.AvgPool2d(2, 1), nnp.nn.AdaptiveAvgPool2d(2), nnp.Flatten(),
                       nnp.Linear(24, 5, init=False))
    m.to(np.float64).load_state_dict(tm.state_dict())
    assert list(m.state_dict()) == list(tm.state_dict())
    rng = np.random.default_rng(1)
    x, target = rng.standard_normal((4, 3, 9, 7)), rng.integers(0, 5, 4)
    crit = nnp.CrossEntropyLoss()
    loss = crit(m(x), target)
    m.backward(crit.backward())
    tl = torch.nn.functional.cross_entropy(tm(torch.tensor(x)), torch.tensor(target))
    tl.backward()
    assert abs(loss - tl.item()) <= 1e-12 * abs(tl.item())
    for (name, p), tp in zip(m.named_parameters(), tm.parameters()):
        assert rel_err(p.grad, tp.grad.numpy()) <= 1e-12, name


@pytest.mark.parametrize("bias", [True, False])
def test_state_dicts_are_interchangeable_both_ways(torch, bias):
    torch.manual_seed(3)
    tm = torch.nn.Conv2d(4, 6, (3, 2), groups=2, bias=bias)
    m = nnp.nn.Conv2d(4, 6, (3, 2), groups=2, bias=bias, init=False)
    m.load_state_dict(tm.state_dict())
    assert list(m.state_dict()) == list(tm.state_dict()) == ["weight", "bias"][:1 + bias]
    back = torch.nn.Conv2d(4, 6, (3, 2), groups=2, bias=bias)
    back.load_state_dict({k: torch.from_numpy(v) for k, v in m.state_dict().items()}, strict=True)
    for k, v in tm.state_dict().items():
        assert np.array_equal(back.state_dict()[k].numpy(), v.numpy()) and m.state_dict()[k].dtype == np.float32


def test_default_init_has_torchs_distribution(torch):
    from test_torch_parity import ks_statistic
    torch.manual_seed(0)
    t = torch.nn.Conv2d(16, 32, (3, 2), groups=2)
    ours = nnp.nn.Conv2d(16, 32, (3, 2), groups=2, rng=0)
    bound = 1 / math.sqrt(16 // 2 * 3 * 2)                            # 1 / sqrt(fan_in)
    for a, b in ((ours.weight.data, t.weight), (ours.bias.data, t.bias)):
        a, b = a.ravel(), b.detach().numpy().ravel()
        assert ks_statistic(a, b) < 1.95 * np.sqrt(2 / min(len(a), len(b)))   # KS at alpha = 0.001
        assert max(np.abs(a).max(), np.abs(b).max()) <= bound < 1.05 * np.abs(a).max()
    same = nnp.nn.Conv2d(16, 32, (3, 2), groups=2, dtype=np.float64, rng=0)
    assert np.array_equal(same.weight.data.astype(np.float32), ours.weight.data)
    assert not nnp.nn.Conv2d(16, 32, 3, init=False).weight.data.any()


@pytest.mark.parametrize("args", [(3, 4, 3), (3, 4, (3, 2)), dict(in_channels=4, out_channels=6, kernel_size=3,
                                  stride=2, padding=(1, 2), dilation=3, groups=2, bias=False),
                                  (3, 4, 4, 1, "same"), (3, 4, 2, 1, "valid")])
def test_conv_repr_and_config_match_torch(torch, args):
    kw = args if isinstance(args, dict) else dict(zip(["in_channels", "out_channels", "kernel_size", "stride",
                                                       "padding"], args))
    m = nnp.nn.Conv2d(**kw, rng=0)
    assert repr(m) == repr(torch.nn.Conv2d(**kw))
    config = json.loads(json.dumps(m.get_config()))
    assert repr(nnp.nn.Conv2d(**config)) == repr(m) and config["padding_mode"] == "zeros"
    for name in ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups"):
        assert getattr(m, name) == getattr(torch.nn.Conv2d(**kw), name), name


@pytest.mark.parametrize("make", [
    lambda nn: nn.MaxPool2d(3), lambda nn: nn.MaxPool2d((3, 2), stride=1, padding=(1, 0), dilation=2, ceil_mode=True),
    lambda nn: nn.AvgPool2d(2), lambda nn: nn.AvgPool2d((3, 2), (1, 2), 1, True, False, 2),
    lambda nn: nn.AdaptiveAvgPool2d(3), lambda nn: nn.AdaptiveAvgPool2d((None, 4))])
def test_pool_repr_and_config_match_torch(torch, make):
    m, t = make(nnp.nn), make(torch.nn)
    assert repr(m) == repr(t)
    config = json.loads(json.dumps(m.get_config()))
    assert repr(type(m)(**config)) == repr(m)
    for name in config:
        assert getattr(m, name) == getattr(t, name) or list(getattr(t, name)) == config[name], name
