"""nnumpy.nn.init against torch.nn.init: the same gains, fans, bounds and variances
(statistical tests on large draws), in place, seeded, with clear errors."""
import math

import numpy as np
import pytest

import nnumpy as nnp
from nnumpy.nn import init

SHAPES = [(7, 5), (16, 6, 5, 5), (3, 4, 2), (1, 1), (10, 3, 3, 3)]
GAINS = [("linear", None), ("conv2d", None), ("sigmoid", None), ("tanh", None), ("relu", None),
         ("leaky_relu", None), ("leaky_relu", 0.2), ("leaky_relu", math.sqrt(5)), ("selu", None)]


@pytest.mark.parametrize("name,param", GAINS)
def test_calculate_gain_is_torchs(torch, name, param):
    assert init.calculate_gain(name, param) == pytest.approx(torch.nn.init.calculate_gain(name, param), rel=1e-15)


@pytest.mark.parametrize("shape", SHAPES)
def test_fans_are_torchs(torch, shape):
    t = torch.empty(shape)
    assert init._fans(np.empty(shape), "x") == torch.nn.init._calculate_fan_in_and_fan_out(t)


def sample_std_ok(values, std, z=6.0):
    """The sample variance of n iid draws lies within z standard errors of std^2 (a normal
    has Var(s^2) = 2 std^4 / (n - 1); a uniform's is smaller), so a wrong formula (a
    factor of sqrt(2) or 3) fails and a right one passes with overwhelming probability."""
    n = values.size
    return abs(values.var(ddof=1) - std ** 2) <= z * std ** 2 * math.sqrt(2 / (n - 1))


@pytest.mark.parametrize("shape", [(400, 300), (64, 32, 5, 5)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bounds_and_variances_follow_torchs_formulas(torch, shape, dtype):
    torch.manual_seed(0)                              # torch's own draws below, seeded as ours are
    fan_in, fan_out = torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))
    w = np.empty(shape, dtype)
    cases = [
        (init.xavier_uniform_, dict(gain=2.0), 2.0 * math.sqrt(2 / (fan_in + fan_out)), "uniform"),
        (init.xavier_normal_, dict(gain=0.5), 0.5 * math.sqrt(2 / (fan_in + fan_out)), "normal"),
        (init.kaiming_uniform_, dict(a=math.sqrt(5)), 1 / math.sqrt(3 * fan_in), "uniform"),   # Linear's default
        (init.kaiming_uniform_, dict(nonlinearity="relu", mode="fan_out"), math.sqrt(2 / fan_out), "uniform"),
        (init.kaiming_normal_, dict(nonlinearity="relu"), math.sqrt(2 / fan_in), "normal"),
        (init.kaiming_normal_, dict(a=0.1, mode="fan_out"),
         torch.nn.init.calculate_gain("leaky_relu", 0.1) / math.sqrt(fan_out), "normal"),
        (init.normal_, dict(mean=0.0, std=0.3), 0.3, "normal"),
        (init.uniform_, dict(a=-0.5, b=0.5), 1 / math.sqrt(12), "uniform"),
    ]
    for fn, kw, std, kind in cases:
        out = fn(w, rng=0, **kw)
        assert out is w and w.dtype == dtype and np.isfinite(w).all()
        v = w.astype(np.float64)
        assert sample_std_ok(v, std), (fn.__name__, kw, v.std(), std)
        if kind == "uniform":                         # the support is exactly U(-sqrt(3) std, sqrt(3) std)
            bound = math.sqrt(3) * std
            assert np.abs(v).max() <= bound * (1 + 1e-6) and np.abs(v).max() > 0.99 * bound
        # torch's draw from the same formula gives the same spread (a second, independent check)
        t = getattr(torch.nn.init, fn.__name__)(torch.empty(shape, dtype=torch.float64), **kw)
        assert sample_std_ok(t.numpy(), std), (fn.__name__, "torch", t.std().item(), std)


def test_in_place_on_parameters_seeded_and_cast(torch):
    layer = nnp.Linear(30, 20, dtype=np.float32, rng=0)
    w_before = layer.weight.data
    assert init.kaiming_normal_(layer.weight, rng=3) is layer.weight
    assert layer.weight.data is w_before and w_before.dtype == np.float32      # in place, dtype kept
    again = np.empty((20, 30), np.float32)
    init.kaiming_normal_(again, rng=3)
    assert np.array_equal(again, w_before)                                    # the same seed, the same weights
    init.zeros_(layer.bias)
    assert (layer.bias.data == 0).all()
    init.ones_(layer.bias)
    init.constant_(layer.weight, 0.25)
    assert (layer.bias.data == 1).all() and (layer.weight.data == 0.25).all()
    nnp.manual_seed(7)
    a = init.normal_(np.empty(5))
    nnp.manual_seed(7)
    assert np.array_equal(a, init.normal_(np.empty(5)))                       # the global generator


def test_nielsens_chapter_3_initialisation():
    """Weights N(0, 1/n_in), biases N(0, 1), in public API calls."""
    layer = nnp.Linear(784, 100, dtype=np.float64)
    init.normal_(layer.weight, std=1 / math.sqrt(784), rng=0)
    init.normal_(layer.bias, rng=1)
    assert sample_std_ok(layer.weight.data, 1 / 28) and sample_std_ok(layer.bias.data, 1.0, z=8)


def test_zero_element_arrays_are_left_alone_and_bad_arguments_named():
    empty = np.empty((0, 5))
    for fn in (init.xavier_uniform_, init.xavier_normal_, init.kaiming_uniform_, init.kaiming_normal_):
        assert fn(empty) is empty
    bad = [
        (lambda: init.xavier_uniform_(np.empty(5)), ValueError, "at least 2 dimensions"),
        (lambda: init.kaiming_normal_(np.empty((3, 3)), mode="fan"), ValueError, "mode"),
        (lambda: init.kaiming_normal_(np.empty((3, 3)), nonlinearity="swish"), ValueError, "unsupported"),
        (lambda: init.calculate_gain("leaky_relu", True), TypeError, "negative slope"),
        (lambda: init.calculate_gain(3), TypeError, "nonlinearity"),
        (lambda: init.normal_(np.empty(3), std=-1), ValueError, "std"),
        (lambda: init.normal_(np.empty(3), std=float("nan")), ValueError, "finite"),
        (lambda: init.uniform_(np.empty(3), a=2, b=1), ValueError, "at most b"),
        (lambda: init.uniform_([1.0, 2.0]), TypeError, "float NumPy array"),
        (lambda: init.zeros_(np.zeros(3, np.int64)), TypeError, "float NumPy array"),
        (lambda: init.ones_(np.broadcast_to(np.zeros(1), (3,))), ValueError, "read-only"),
        (lambda: init.normal_(np.empty(3), rng="seed"), TypeError, "rng"),
    ]
    for call, exc, msg in bad:
        with pytest.raises(exc, match=msg):
            call()
