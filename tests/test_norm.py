"""Normalisation layers (BatchNorm1d/2d, LayerNorm, GroupNorm) and Dropout2d: finite differences,
PyTorch parity (outputs, gradients, running statistics, state dicts), buffers and errors.
Every test runs on each available backend."""
import json
import warnings

import numpy as np
import pytest

import nnumpy as nnp
from nnumpy import functional as F
from nnumpy.report import tensor_errors

nn = nnp.nn


@pytest.fixture(params=nnp.backend.available_backends(), autouse=True)
def backend(request):
    with nnp.backend.use(request.param):
        yield request.param


def rel(a, b):
    """Normwise relative error of a against b; +inf when anything is non-finite (a NaN fails)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, f"shapes {a.shape} and {b.shape}"
    return tensor_errors(a, b)["rel_err"]


# name -> (factory(dtype), input shape)
LAYERS = {
    "bn2d": (lambda dt: nn.BatchNorm2d(3, dtype=dt), (6, 3, 5, 4)),
    "bn2d-noaffine": (lambda dt: nn.BatchNorm2d(3, affine=False, dtype=dt), (6, 3, 5, 4)),
    "bn2d-nobias": (lambda dt: nn.BatchNorm2d(3, bias=False, dtype=dt), (4, 3, 2, 3)),
    "bn2d-nostats": (lambda dt: nn.BatchNorm2d(3, track_running_stats=False, dtype=dt), (4, 3, 3, 3)),
    "bn2d-cma": (lambda dt: nn.BatchNorm2d(2, momentum=None, eps=1e-3, dtype=dt), (3, 2, 4, 4)),
    "bn1d-2d": (lambda dt: nn.BatchNorm1d(5, dtype=dt), (8, 5)),
    "bn1d-2d-two": (lambda dt: nn.BatchNorm1d(3, eps=0.5, dtype=dt), (2, 3)),    # two values per set: see below
    "bn1d-3d": (lambda dt: nn.BatchNorm1d(4, momentum=0.3, dtype=dt), (6, 4, 7)),
    "ln": (lambda dt: nn.LayerNorm((4, 5), dtype=dt), (3, 2, 4, 5)),
    "ln-1d": (lambda dt: nn.LayerNorm(7, eps=1e-6, dtype=dt), (6, 7)),
    "ln-nobias": (lambda dt: nn.LayerNorm([3, 4], bias=False, dtype=dt), (5, 3, 4)),
    "ln-noaffine": (lambda dt: nn.LayerNorm(6, elementwise_affine=False), (2, 3, 6)),
    "gn": (lambda dt: nn.GroupNorm(2, 6, dtype=dt), (4, 6, 5, 3)),
    "gn-2d": (lambda dt: nn.GroupNorm(3, 6, eps=0.5, dtype=dt), (5, 6)),    # two values per set: see below
    "gn-1group": (lambda dt: nn.GroupNorm(1, 4, dtype=dt), (3, 4, 5)),
    "gn-per-channel": (lambda dt: nn.GroupNorm(4, 4, dtype=dt), (3, 4, 5, 5)),
    "gn-noaffine": (lambda dt: nn.GroupNorm(2, 4, affine=False), (3, 4, 6)),
    "gn-nobias": (lambda dt: nn.GroupNorm(2, 4, bias=False, dtype=dt), (2, 4, 3, 3)),
}
MODES = ["train", "eval"]
# Two values per set (a, b): bn1d-2d-two, gn-2d.  Then dx = +-(gamma/sigma) (dy_a - dy_b)/2 *
# eps / sigma^2: the backward's projection cancels all but a fraction eps / sigma^2 of its terms, and
# rounding is amplified by sigma^2 / eps (1e5 with eps = 1e-5: float64 results, nnumpy's and torch's
# alike, are then off by ~1e-11 from exact, float32 ones by ~1e-3).  These layers use eps = 0.5.


def make(name, dtype, mode="train", seed=0):
    """The layer with random weights (and, in eval mode, random running statistics), and an input."""
    factory, shape = LAYERS[name]
    m = factory(dtype)
    rng = np.random.default_rng(seed)
    state = {}
    for k, v in m.state_dict().items():
        if k in ("weight", "running_var"):
            state[k] = rng.uniform(0.5, 2.0, v.shape)
        elif k in ("bias", "running_mean"):
            state[k] = rng.standard_normal(v.shape)
        else:
            state[k] = np.array(7 if mode == "eval" else 0)
    m.load_state_dict(state)
    m.train(mode == "train")
    x = (1.5 * rng.standard_normal(shape) + 0.3).astype(dtype)
    return m, x


def twin(torch, m, dtype):
    """The PyTorch module built from m's config (same keys), holding m's state (strict load)."""
    tm = getattr(torch.nn, type(m).__name__)(**m.get_config(), dtype=getattr(torch, np.dtype(dtype).name))
    tm.load_state_dict({k: torch.from_numpy(v) for k, v in m.state_dict().items()}, strict=True)
    return tm.train(m.training)


# -- finite differences -----------------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", list(LAYERS))
def test_gradcheck(name, mode):
    m, x = make(name, np.float64, mode)
    r = nnp.gradcheck(m, x, tolerance=1e-6, seed=3)
    assert r, str(r)
    assert len(r.rows) == 1 + len(m.parameters())


@pytest.mark.parametrize("make_layer,shape", [
    (lambda: nn.Dropout2d(0.3, rng=5), (4, 3, 2, 3)),
    (lambda: nn.Dropout2d(0.6, rng=1).eval(), (4, 3, 2, 3)),
    (lambda: nn.Dropout2d(1.0, rng=0), (2, 3, 2, 2)),
], ids=["train", "eval", "p1"])
def test_gradcheck_dropout2d(make_layer, shape):
    x = np.random.default_rng(0).standard_normal(shape)
    r = nnp.gradcheck(make_layer(), x, tolerance=1e-7)
    assert r, str(r)


def test_gradcheck_inside_sequential_with_loss():
    """Linear -> BatchNorm1d -> Tanh -> Linear -> LayerNorm: on numba the first Linear runs fused
    and hands BatchNorm a reused buffer."""
    f64 = np.float64
    model = nn.Sequential(nn.Linear(6, 5, bias=False, rng=0, dtype=f64), nn.BatchNorm1d(5, dtype=f64),
                          nn.Tanh(), nn.Linear(5, 4, rng=1, dtype=f64), nn.LayerNorm(4, dtype=f64))
    rng = np.random.default_rng(2)
    r = nnp.gradcheck(model, rng.standard_normal((7, 6)), target=rng.integers(0, 4, 7),
                      loss=nn.CrossEntropyLoss(), tolerance=1e-7)
    assert r, str(r)


def test_a_bias_before_batch_norm_gets_no_gradient():
    """Batch norm subtracts each channel's batch mean, so a constant added per channel before it
    (a Linear's bias) changes nothing and its gradient is 0: dx sums to 0 over the batch."""
    bn = nn.BatchNorm1d(4, dtype=np.float64)
    rng = np.random.default_rng(0)
    bn(rng.standard_normal((9, 4)))
    dy = rng.standard_normal((9, 4))
    dx = bn.backward(dy)
    assert np.isfinite(dx).all() and np.abs(dx).max() > 0.1
    assert np.abs(dx.sum(axis=0)).max() < 1e-14 * np.abs(dx).max()


# -- PyTorch parity ---------------------------------------------------------------------------

@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-12), (np.float32, 1e-5)], ids=["f64", "f32"])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", list(LAYERS))
def test_matches_torch(torch, name, mode, dtype, tol):
    m, x = make(name, dtype, mode, seed=1)
    tm = twin(torch, m, dtype)
    dy = np.random.default_rng(9).standard_normal(x.shape).astype(dtype)
    tx = torch.tensor(x, requires_grad=True)
    ty = tm(tx)
    ty.backward(torch.from_numpy(dy))
    y = m(x)
    dx = m.backward(dy)
    assert y.dtype == dx.dtype == dtype
    ours = {"y": y, "dx": dx, **{"d" + k: p.grad for k, p in m.named_parameters()}}
    theirs = {"y": ty, "dx": tx.grad, **{"d" + k: p.grad for k, p in tm.named_parameters()}}
    theirs = {k: v.detach().numpy() for k, v in theirs.items()}
    errors = {k: rel(ours[k], theirs[k]) for k in ours}
    for (k, b), (tk, tb) in zip(m.named_buffers(), tm.named_buffers()):
        assert k == tk
        errors[k] = rel(b, tb.numpy())
    assert all(e <= tol for e in errors.values()), errors


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-12), (np.float32, 1e-5)], ids=["f64", "f32"])
@pytest.mark.parametrize("momentum", [0.1, None, 1.0], ids=["m0.1", "cma", "m1"])
@pytest.mark.parametrize("cls,shape", [(nn.BatchNorm2d, (5, 3, 4, 2)), (nn.BatchNorm1d, (6, 3)),
                                       (nn.BatchNorm1d, (2, 3, 4))], ids=["2d", "1d-2d", "1d-3d"])
def test_running_stats_follow_torch(torch, cls, shape, momentum, dtype, tol):
    m = cls(3, momentum=momentum, dtype=dtype)
    tm = twin(torch, m, dtype)
    ids = [id(b) for b in m.buffers()]
    rng = np.random.default_rng(4)
    for step in range(20):                 # batches of changing location and scale
        shift = rng.uniform(-2, 2, (1, 3) + (1,) * (len(shape) - 2))         # per channel
        x = (rng.uniform(0.2, 3) * rng.standard_normal(shape) + shift).astype(dtype)
        y = m(x)
        m.backward(np.ones_like(y))
        with torch.no_grad():
            ty = tm(torch.from_numpy(x))
        assert rel(y, ty.numpy()) <= tol, step
    assert [id(b) for b in m.buffers()] == ids, "the buffers must be updated in place"
    assert m.num_batches_tracked.dtype == np.int64 and int(m.num_batches_tracked) == 20
    assert int(tm.num_batches_tracked) == 20
    assert rel(m.running_mean, tm.running_mean.numpy()) <= tol
    assert rel(m.running_var, tm.running_var.numpy()) <= tol
    m.eval(), tm.eval()                    # eval after training: the running statistics normalise
    x = rng.standard_normal(shape).astype(dtype)
    tx = torch.tensor(x, requires_grad=True)
    ty = tm(tx)
    ty.backward(torch.ones_like(ty))
    assert rel(m(x), ty.detach().numpy()) <= tol
    assert rel(m.backward(np.ones(shape, dtype)), tx.grad.numpy()) <= tol


def test_state_dicts_move_both_ways(torch):
    rng = np.random.default_rng(0)
    for m, shape in [(nn.BatchNorm2d(3, dtype=np.float64), (4, 3, 2, 2)),
                     (nn.BatchNorm1d(2, affine=False, dtype=np.float64), (5, 2)),
                     (nn.LayerNorm((2, 3), dtype=np.float64), (4, 2, 3)),
                     (nn.GroupNorm(2, 4, dtype=np.float64), (3, 4, 2))]:
        for p in m.parameters():
            p.data[...] = rng.standard_normal(p.shape)
        for _ in range(3):
            m(rng.standard_normal(shape))                      # moves the running statistics
        tm = twin(torch, m, np.float64)                        # nnumpy -> torch, strict
        assert list(tm.state_dict()) == list(m.state_dict())
        with torch.no_grad():                                  # torch trains on, and back: torch -> nnumpy
            tm(torch.from_numpy(rng.standard_normal(shape)))
            for p in tm.parameters():
                p.add_(1.0)
        back = type(m)(**m.get_config(), dtype=np.float64, init=False)
        back.load_state_dict(tm.state_dict(), strict=True)
        for k, v in tm.state_dict().items():
            assert np.array_equal(back.state_dict()[k], v.numpy()), k
        assert back.state_dict().get("num_batches_tracked", np.zeros((), np.int64)).dtype == np.int64
        back.eval(), tm.eval()
        x = rng.standard_normal(shape)
        assert rel(back(x), tm(torch.from_numpy(x)).detach().numpy()) <= 1e-12


# -- buffers and modes --------------------------------------------------------------------------

def test_buffers_defaults_keys_and_config():
    m = nn.BatchNorm2d(4, dtype=np.float64)
    sd = m.state_dict()
    assert list(sd) == ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    assert [k for k, _ in m.named_parameters()] == ["weight", "bias"]
    assert np.array_equal(sd["weight"], np.ones(4)) and np.array_equal(sd["running_var"], np.ones(4))
    assert not sd["bias"].any() and not sd["running_mean"].any()
    assert sd["running_mean"].dtype == np.float64 and sd["num_batches_tracked"].shape == ()
    assert list(nn.BatchNorm1d(2, affine=False).state_dict()) == ["running_mean", "running_var",
                                                                  "num_batches_tracked"]
    assert list(nn.BatchNorm1d(2, track_running_stats=False).state_dict()) == ["weight", "bias"]
    assert list(nn.GroupNorm(1, 2, bias=False).state_dict()) == ["weight"]
    assert not nn.LayerNorm(3, init=False).weight.data.any()
    m.to(np.float32)
    assert m.running_var.dtype == np.float32 and m.num_batches_tracked.dtype == np.int64
    for layer in [m, nn.BatchNorm1d(3, momentum=None, affine=False), nn.LayerNorm([2, 3], bias=False),
                  nn.GroupNorm(2, 4, eps=1e-3), nn.Dropout2d(0.2)]:
        cfg = layer.get_config()
        rebuilt = type(layer)(**json.loads(json.dumps(cfg)))
        assert rebuilt.get_config() == cfg and list(rebuilt.state_dict()) == list(layer.state_dict())


def test_eval_and_backward_leave_the_buffers_alone():
    m, x = make("bn2d", np.float64, "eval")
    before = m.state_dict()
    m.backward(np.ones_like(m(x)))
    m.train()
    m(x)
    after_train = m.state_dict()
    m.backward(np.ones_like(x))
    for k, v in m.state_dict().items():
        assert np.array_equal(v, after_train[k])
    assert int(after_train["num_batches_tracked"]) == int(before["num_batches_tracked"]) + 1
    assert not np.array_equal(after_train["running_mean"], before["running_mean"])


def test_without_running_stats_eval_uses_the_batch():
    m, x = make("bn2d-nostats", np.float64, "eval")
    assert m.running_mean is None and not list(m.buffers())
    y = m.eval()(x)
    assert np.array_equal(y, m.train()(x))
    xhat = (y - m.bias.data[:, None, None]) / m.weight.data[:, None, None]
    assert np.abs(xhat.mean(axis=(0, 2, 3))).max() < 1e-14 and np.abs(xhat.std(axis=(0, 2, 3)) - 1).max() < 1e-5


def test_cumulative_average_is_the_mean_of_the_batch_statistics():
    """momentum=None: after k batches the running statistics are the plain means of the k batch
    means and unbiased variances (checked without PyTorch)."""
    m = nn.BatchNorm1d(3, momentum=None, dtype=np.float64)
    rng = np.random.default_rng(5)
    xs = [rng.standard_normal((4 + i, 3)) * (1 + i) + i for i in range(6)]
    for x in xs:
        m(x)
    np.testing.assert_allclose(m.running_mean, np.mean([x.mean(0) for x in xs], axis=0), rtol=1e-13)
    np.testing.assert_allclose(m.running_var, np.mean([x.var(0, ddof=1) for x in xs], axis=0), rtol=1e-13)


def test_functional_returns_new_statistics_and_mutates_nothing():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 2, 3))
    rm, rv = rng.standard_normal(2), rng.uniform(1, 2, 2)
    args = [a.copy() for a in (x, rm, rv)]
    y, (xhat, inv_std), (nm, nv, count) = F.batch_norm_forward(x, None, None, rm, rv, momentum=0.25,
                                                               num_batches_tracked=4)
    assert all(np.array_equal(a, b) for a, b in zip(args, (x, rm, rv))) and count == 5
    np.testing.assert_allclose(nm, 0.75 * rm + 0.25 * x.mean(axis=(0, 2)), rtol=1e-14)
    np.testing.assert_allclose(nv, 0.75 * rv + 0.25 * x.var(axis=(0, 2), ddof=1), rtol=1e-14)
    np.testing.assert_allclose(inv_std, 1 / np.sqrt(x.var(axis=(0, 2)) + 1e-5), rtol=1e-14)   # biased
    assert xhat.shape == y.shape == x.shape
    y_eval, _, none = F.batch_norm_forward(x, None, None, rm, rv, training=False)
    assert none is None
    np.testing.assert_allclose(y_eval, (x - rm[:, None]) / np.sqrt(rv[:, None] + 1e-5), rtol=1e-14)


@pytest.mark.parametrize("name,mode,saved", [
    ("bn2d", "train", {"xhat": (6, 3, 5, 4), "inv_std": (3,)}),
    ("bn2d-noaffine", "eval", {"inv_std": (3,)}),
    ("ln", "train", {"xhat": (3, 2, 4, 5), "inv_std": (3, 2, 1, 1)}),
    ("gn", "train", {"xhat": (4, 2, 45), "inv_std": (4, 2, 1)}),
])
def test_cache_holds_what_the_docstrings_say(name, mode, saved):
    m, x = make(name, np.float32, mode)
    m(x)
    assert {k: v.shape for k, v in m.saved_arrays().items()} == saved
    assert all(v.dtype == np.float32 for v in m.saved_arrays().values())


# -- Dropout2d ----------------------------------------------------------------------------------

def test_dropout2d_drops_whole_channels():
    x = np.random.default_rng(0).standard_normal((200, 20, 3, 2)) + 5.0       # no zeros in x
    d = nn.Dropout2d(0.3, rng=7)
    y = d(x)
    kept = y[:, :, 0, 0] != 0                                                  # (N, C)
    assert np.array_equal(y, np.where(kept[:, :, None, None], x * (1 / 0.7), 0.0))
    assert abs(1 - kept.mean() - 0.3) < 0.02                                   # 4000 draws, seeded
    dy = np.random.default_rng(1).standard_normal(x.shape)
    assert np.array_equal(d.backward(dy), np.where(kept[:, :, None, None], dy * (1 / 0.7), 0.0))
    assert np.array_equal(nn.Dropout2d(0.3, rng=7)(x), y)                     # same seed, same mask
    assert np.array_equal(d.eval()(x), x)
    assert np.array_equal(nn.Dropout2d(0.0)(x), x) and not nn.Dropout2d(1.0)(x).any()


@pytest.mark.parametrize("shape", [(4, 6, 3, 5), (4, 6, 5)], ids=["4d", "3d"])
def test_dropout2d_reproduces_torch_mask(torch, shape):
    x = np.random.default_rng(2).standard_normal(shape) + 5.0
    tx = torch.tensor(x, requires_grad=True)
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")          # torch's warning about 3-d input
        ty = torch.nn.Dropout2d(0.4)(tx)
    ty.backward(torch.ones_like(ty))
    mask = (ty.detach().numpy() != 0)[(slice(None), slice(None)) + (0,) * (len(shape) - 2)]   # (N, C)
    d = nn.Dropout2d(0.4)
    if len(shape) == 3:
        with pytest.warns(UserWarning, match=r"taken as \(N, C, L\).*PyTorch 2.13"):
            y = d(x, mask=mask)
    else:
        y = d(x, mask=mask[:, :, None, None])
    assert rel(y, ty.detach().numpy()) <= 1e-15
    assert rel(d.backward(np.ones(shape)), tx.grad.numpy()) <= 1e-15


# -- errors -------------------------------------------------------------------------------------

@pytest.mark.parametrize("build,error,match", [
    (lambda: nn.BatchNorm2d(0), ValueError, "num_features must be a positive integer"),
    (lambda: nn.BatchNorm2d(3.5), TypeError, "num_features must be a positive integer, got 3.5"),
    (lambda: nn.BatchNorm1d(3, eps=-1e-5), ValueError, "eps must be a finite number >= 0"),
    (lambda: nn.BatchNorm1d(3, momentum=1.5), ValueError, r"momentum must be a finite number in \[0, 1\]"),
    (lambda: nn.BatchNorm1d(3, momentum="0.1"), TypeError, "momentum"),
    (lambda: nn.BatchNorm1d(3, affine="yes"), TypeError, "affine must be True or False"),
    (lambda: nn.BatchNorm1d(3, track_running_stats=1), TypeError, "track_running_stats must be True or"),
    (lambda: nn.BatchNorm1d(3, dtype=np.int32), TypeError, "float32 or float64"),
    (lambda: nn.BatchNorm1d(3, rng="x"), TypeError, "rng must be"),
    (lambda: nn.LayerNorm([]), TypeError, "normalized_shape must be a positive integer or a non-empty"),
    (lambda: nn.LayerNorm("abc"), TypeError, "normalized_shape"),
    (lambda: nn.LayerNorm((3, 0)), ValueError, r"normalized_shape\[1\] must be a positive integer"),
    (lambda: nn.LayerNorm(3, eps=-1e-5), ValueError, "eps must be a finite number >= 0"),
    (lambda: nn.LayerNorm(3, bias=None), TypeError, "bias must be True or False"),
    (lambda: nn.GroupNorm(3, 4), ValueError, r"num_channels \(4\) must be divisible by num_groups \(3\)"),
    (lambda: nn.GroupNorm(0, 4), ValueError, "num_groups must be a positive integer"),
    (lambda: nn.Dropout2d(1.5), ValueError, r"p \(the Dropout2d probability\) must be a finite number in"),
    (lambda: nn.Dropout2d(None), TypeError, "Dropout2d probability"),
])
def test_bad_arguments(build, error, match):
    with pytest.raises(error, match=match):
        build()


F32 = np.float32
BAD_INPUTS = [
    (lambda: nn.BatchNorm1d(3), np.zeros((4, 3, 2, 2), F32), ValueError,
     r"BatchNorm1d\(3\) expects input of shape \(N, C\) or \(N, C, L\), got a 4-d input"),
    (lambda: nn.BatchNorm2d(3), np.zeros((4, 3, 2), F32), ValueError,
     r"BatchNorm2d\(3\) expects input of shape \(N, C, H, W\), got a 3-d input"),
    (lambda: nn.BatchNorm2d(3), np.zeros((4, 2, 2, 2), F32), ValueError, r"expects 3 channels \(x.shape\[1\]\)"),
    (lambda: nn.BatchNorm1d(3), np.zeros((1, 3), F32), ValueError, "Expected more than 1 value per channel"),
    (lambda: nn.BatchNorm2d(3), np.zeros((1, 3, 1, 1), F32), ValueError, "more than 1 value per channel"),
    (lambda: nn.BatchNorm2d(3, track_running_stats=False).eval(), np.zeros((1, 3, 1, 1), F32), ValueError,
     "more than 1 value per channel"),
    (lambda: nn.BatchNorm1d(3), np.zeros((0, 3), F32), ValueError, r"input of shape \(0, 3\) is empty"),
    (lambda: nn.BatchNorm1d(3), np.zeros((4, 3)), TypeError, "float32 weights but got float64 input"),
    (lambda: nn.BatchNorm1d(3, affine=False), np.zeros((4, 3)), TypeError, "float32 weights but got float64"),
    (lambda: nn.BatchNorm1d(3), np.zeros((4, 3), np.int64), TypeError, "int64"),
    (lambda: nn.BatchNorm1d(3), [[0.0] * 3] * 4, TypeError, "expects a NumPy array, got list"),
    (lambda: nn.LayerNorm((4, 5)), np.zeros((3, 5, 4), F32), ValueError,
     r"LayerNorm\(\[4, 5\]\) expects input of shape \(\*, 4, 5\), got \(3, 5, 4\)"),
    (lambda: nn.LayerNorm((2, 4, 5)), np.zeros((4, 5), F32), ValueError, r"\(\*, 2, 4, 5\)"),
    (lambda: nn.GroupNorm(2, 4), np.zeros((3, 6, 2), F32), ValueError,
     r"GroupNorm\(2, 4\) expects input of shape \(N, 4, \*\), got \(3, 6, 2\)"),
    (lambda: nn.GroupNorm(2, 4), np.zeros(4, F32), ValueError, r"expects input of shape \(N, 4, \*\)"),
    (lambda: nn.GroupNorm(4, 4), np.zeros((1, 4), F32), ValueError, "single value per group"),
    (lambda: nn.Dropout2d(0.5), np.zeros((4, 3), F32), ValueError,
     r"Dropout2d expects input of shape \(N, C, H, W\) \(or \(N, C, L\)\), got a 2-d input"),
    (lambda: nn.Dropout2d(0.5), np.zeros((2, 4, 3, 2, 2), F32), ValueError, "got a 5-d input"),
]


@pytest.mark.parametrize("build,x,error,match", BAD_INPUTS)
def test_bad_inputs(build, x, error, match):
    m = build()
    before = m.state_dict()
    with pytest.raises(error, match=match):
        m(x)
    for k, v in m.state_dict().items():                    # a refused batch changes no statistic
        assert np.array_equal(v, before[k]), k
    assert m._cache is None


def test_bad_masks_and_single_value_in_eval():
    x = np.ones((4, 3, 2, 2), F32)
    d = nn.Dropout2d(0.5)
    with pytest.raises(ValueError, match=r"mask has shape \(4, 2\), expected \(4, 3\) or \(4, 3, 1, 1\)"):
        d(x, mask=np.ones((4, 2)))
    with pytest.raises(TypeError, match="mask must be a NumPy array of 0s and 1s, got list"):
        d(x, mask=[[1, 0, 1]] * 4)
    # one value per channel is fine where the running statistics normalise (as in PyTorch)
    m = nn.BatchNorm2d(3).eval()
    assert np.array_equal(m(x[:1, :, :1, :1]), x[:1, :, :1, :1] / np.sqrt(np.float32(1 + 1e-5)))
