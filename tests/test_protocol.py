"""The module protocol, checked over every module and both dtypes."""
import numpy as np
import pytest

import nnumpy as nnp
from nnumpy.random import preserve_rng_state

MODULES = {
    "linear": lambda dt: nnp.Linear(6, 4, dtype=dt, rng=0),
    "linear-nobias": lambda dt: nnp.Linear(6, 4, bias=False, dtype=dt, rng=0),
    "relu": lambda dt: nnp.ReLU(),
    "leaky_relu": lambda dt: nnp.LeakyReLU(0.2),
    "sigmoid": lambda dt: nnp.Sigmoid(),
    "tanh": lambda dt: nnp.Tanh(),
    "identity": lambda dt: nnp.Identity(),
    "flatten": lambda dt: nnp.Flatten(),
    "dropout": lambda dt: nnp.Dropout(0.4, rng=3),
    "dropout-eval": lambda dt: nnp.Dropout(0.4, rng=3).eval(),
    "sequential": lambda dt: nnp.Sequential(nnp.Linear(6, 5, dtype=dt, rng=1), nnp.Tanh(),
                                            nnp.Linear(5, 3, dtype=dt, rng=2)),
    "mlp-dropout": lambda dt: nnp.MLP([6, 8, 7, 3], activation="sigmoid", dropout=0.2, dtype=dt, rng=4),
    # -- convolution and pooling: (factory, input shape) -------------------------------------
    "conv2d": (lambda dt: nnp.nn.Conv2d(3, 4, 3, padding=1, dtype=dt, rng=0), (2, 3, 7, 6)),
    "conv2d-strided-nobias": (lambda dt: nnp.nn.Conv2d(3, 5, (3, 2), stride=(2, 3), bias=False, dtype=dt,
                                                       rng=1), (2, 3, 9, 8)),
    "conv2d-groups-dilated": (lambda dt: nnp.nn.Conv2d(4, 6, 3, padding=2, dilation=2, groups=2, dtype=dt,
                                                       rng=2), (2, 4, 7, 6)),
    "conv2d-depthwise-same": (lambda dt: nnp.nn.Conv2d(3, 6, 4, padding="same", groups=3, dtype=dt, rng=3),
                              (1, 3, 6, 5)),
    "conv2d-unbatched": (lambda dt: nnp.nn.Conv2d(3, 4, 3, dtype=dt, rng=4), (3, 7, 6)),
    "maxpool2d": (lambda dt: nnp.nn.MaxPool2d(2), (2, 3, 7, 6)),
    "maxpool2d-overlapping": (lambda dt: nnp.nn.MaxPool2d(3, stride=1, padding=1), (2, 3, 7, 6)),
    "maxpool2d-dilated-ceil": (lambda dt: nnp.nn.MaxPool2d((3, 2), stride=2, padding=1, dilation=2,
                                                           ceil_mode=True), (2, 3, 8, 7)),
    "maxpool2d-unbatched": (lambda dt: nnp.nn.MaxPool2d(2, 1), (3, 5, 5)),
    "avgpool2d": (lambda dt: nnp.nn.AvgPool2d(2), (2, 3, 7, 6)),
    "avgpool2d-pad-ceil-nocount": (lambda dt: nnp.nn.AvgPool2d(3, 2, padding=1, ceil_mode=True,
                                                               count_include_pad=False), (2, 3, 8, 7)),
    "avgpool2d-divisor-unbatched": (lambda dt: nnp.nn.AvgPool2d((2, 3), stride=1, divisor_override=4),
                                    (3, 5, 6)),
    "adaptiveavgpool2d": (lambda dt: nnp.nn.AdaptiveAvgPool2d((3, 4)), (2, 3, 7, 6)),
    "adaptiveavgpool2d-none-unbatched": (lambda dt: nnp.nn.AdaptiveAvgPool2d((None, 4)), (3, 7, 5)),
    "adaptiveavgpool2d-larger": (lambda dt: nnp.nn.AdaptiveAvgPool2d(9), (2, 3, 7, 6)),
    # -- normalisation: (factory, input shape) ------------------------------------------------
    "batchnorm2d": (lambda dt: nnp.nn.BatchNorm2d(3, dtype=dt), (4, 3, 5, 6)),
    "batchnorm2d-eval": (lambda dt: nnp.nn.BatchNorm2d(3, dtype=dt).eval(), (4, 3, 5, 6)),
    "batchnorm2d-noaffine": (lambda dt: nnp.nn.BatchNorm2d(3, affine=False, dtype=dt), (4, 3, 5, 6)),
    "batchnorm2d-noaffine-eval": (lambda dt: nnp.nn.BatchNorm2d(3, affine=False, dtype=dt).eval(),
                                  (4, 3, 5, 6)),
    "batchnorm2d-nostats-eval": (lambda dt: nnp.nn.BatchNorm2d(3, track_running_stats=False,
                                                               dtype=dt).eval(), (4, 3, 5, 6)),
    "batchnorm2d-nobias": (lambda dt: nnp.nn.BatchNorm2d(3, bias=False, dtype=dt), (4, 3, 5, 6)),
    "batchnorm1d-2d": lambda dt: nnp.nn.BatchNorm1d(6, dtype=dt),
    "batchnorm1d-2d-eval": lambda dt: nnp.nn.BatchNorm1d(6, momentum=None, dtype=dt).eval(),
    "batchnorm1d-3d": (lambda dt: nnp.nn.BatchNorm1d(3, dtype=dt), (4, 3, 7)),
    "layernorm": (lambda dt: nnp.nn.LayerNorm((5, 6), dtype=dt), (4, 3, 5, 6)),
    "layernorm-nobias": (lambda dt: nnp.nn.LayerNorm(6, bias=False, dtype=dt), (4, 3, 5, 6)),
    "layernorm-noaffine": lambda dt: nnp.nn.LayerNorm(6, elementwise_affine=False),
    "groupnorm": (lambda dt: nnp.nn.GroupNorm(2, 4, dtype=dt), (3, 4, 5, 6)),
    "groupnorm-noaffine-3d": (lambda dt: nnp.nn.GroupNorm(3, 6, affine=False), (3, 6, 5)),
    "dropout2d": (lambda dt: nnp.nn.Dropout2d(0.4, rng=3), (4, 3, 5, 6)),
    "dropout2d-eval": (lambda dt: nnp.nn.Dropout2d(0.4, rng=3).eval(), (4, 3, 5, 6)),
    # -- smooth and saturating activations, softmaxes -------------------------------------------
    "gelu": lambda dt: nnp.GELU(),
    "gelu-tanh": (lambda dt: nnp.GELU(approximate="tanh"), (2, 3, 4)),
    "elu": lambda dt: nnp.ELU(alpha=0.5),
    "silu": (lambda dt: nnp.SiLU(), (3, 2, 5)),
    "softplus": lambda dt: nnp.Softplus(beta=2.0, threshold=1.0),
    "hardtanh": lambda dt: nnp.Hardtanh(-0.5, 0.7),
    "softmax": lambda dt: nnp.Softmax(dim=1),
    "softmax-dim0-3d": (lambda dt: nnp.Softmax(dim=0), (4, 3, 5)),
    "log_softmax": lambda dt: nnp.LogSoftmax(dim=-1),
    "log_softmax-middle-4d": (lambda dt: nnp.LogSoftmax(dim=-2), (2, 3, 4, 5)),
}
DTYPES = [np.float32, np.float64]
DEFAULT_SHAPE = (5, 6)


def make(name, dtype):
    """(module, input shape): an entry is a factory, or (factory, input shape) for N-d layers."""
    entry = MODULES[name]
    factory, shape = entry if isinstance(entry, tuple) else (entry, DEFAULT_SHAPE)
    return factory(dtype), shape


def run(module, x, dy_seed=0):
    y = module(x)
    dy = np.random.default_rng(dy_seed).standard_normal(y.shape).astype(y.dtype)
    return y, dy


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("name", list(MODULES))
class TestProtocol:
    def test_inputs_unchanged_and_dtype_preserved(self, name, dtype):
        m, shape = make(name, dtype)
        x = np.random.default_rng(1).standard_normal(shape).astype(dtype)
        x0 = x.copy()
        y, dy = run(m, x)
        dy0 = dy.copy()
        dx = m.backward(dy)
        assert np.array_equal(x, x0), "forward or backward wrote into the input"
        assert np.array_equal(dy, dy0), "backward wrote into dy"
        assert y.dtype == dtype and dx.dtype == dtype
        assert dx.shape == x.shape
        assert all(p.grad.dtype == dtype for p in m.parameters())

    def test_two_rounds_accumulate_twice_one(self, name, dtype):
        m, shape = make(name, dtype)
        x = np.random.default_rng(2).standard_normal(shape).astype(dtype)
        with preserve_rng_state(m) as rewind:
            rewind()
            _, dy = run(m, x)
            dx1 = m.backward(dy)
            once = [p.grad.copy() for p in m.parameters()]
            rewind()
            run(m, x)
            dx2 = m.backward(dy)
        np.testing.assert_array_equal(dx1, dx2)
        for g1, p in zip(once, m.parameters()):
            np.testing.assert_allclose(p.grad, 2 * g1, rtol=1e-6 if dtype == np.float32 else 1e-15)

    def test_backward_without_forward_raises(self, name, dtype):
        m, shape = make(name, dtype)
        with pytest.raises(RuntimeError, match="without a preceding forward"):
            m.backward(np.ones((5, 3), dtype=dtype))
        x = np.random.default_rng(3).standard_normal(shape).astype(dtype)
        _, dy = run(m, x)
        m.backward(dy)
        with pytest.raises(RuntimeError, match="without a preceding forward"):
            m.backward(dy)

    def test_zero_grad_keeps_the_same_arrays(self, name, dtype):
        m, shape = make(name, dtype)
        x = np.random.default_rng(4).standard_normal(shape).astype(dtype)
        _, dy = run(m, x)
        m.backward(dy)
        ids = [(id(p.data), id(p.grad)) for p in m.parameters()]
        m.zero_grad()
        assert ids == [(id(p.data), id(p.grad)) for p in m.parameters()]
        assert all(not p.grad.any() for p in m.parameters())

    def test_bad_dy_is_rejected(self, name, dtype):
        m, shape = make(name, dtype)
        x = np.random.default_rng(5).standard_normal(shape).astype(dtype)
        y, dy = run(m, x)
        with pytest.raises(ValueError, match="dy has shape"):
            m.backward(dy[:-1])
        run(m, x)
        other = np.float64 if dtype == np.float32 else np.float32
        with pytest.raises(TypeError, match="dtype"):
            m.backward(dy.astype(other))


def test_linear_rejects_mismatched_and_integer_input():
    lin = nnp.Linear(4, 2, rng=0)                     # float32 weights
    with pytest.raises(TypeError, match="float32 weights but got float64"):
        lin(np.zeros((3, 4)))
    with pytest.raises(TypeError, match="uint8"):
        lin(np.zeros((3, 4), dtype=np.uint8))
    with pytest.raises(ValueError, match=r"expects input of shape \(N, 4\), got \(3, 5\)"):
        lin(np.zeros((3, 5), dtype=np.float32))
    with pytest.raises(TypeError, match="NumPy array"):
        lin([[0.0] * 4])


def test_to_changes_dtype_and_keeps_values():
    m = nnp.MLP([4, 3, 2], rng=0)
    w32 = m.state_dict()
    m.to(np.float64)
    assert m.dtype == np.float64 and all(p.grad.dtype == np.float64 for p in m.parameters())
    for k, v in m.state_dict().items():
        np.testing.assert_array_equal(v.astype(np.float32), w32[k])
    with pytest.raises(TypeError, match="float32 or float64"):
        m.to(np.int32)


def test_train_eval_flags_recurse():
    m = nnp.MLP([4, 3, 2], dropout=0.5, rng=0)
    m.eval()
    assert not any(mod.training for mod in m.modules())
    m.train()
    assert all(mod.training for mod in m.modules())


@pytest.mark.parametrize("crit,target", [
    (nnp.CrossEntropyLoss(), np.array([0, 2, 1, 1])),
    (nnp.MSELoss(), np.ones((4, 3))),
], ids=["cross-entropy", "mse"])
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_loss_protocol(crit, target, dtype):
    z = np.random.default_rng(0).standard_normal((4, 3)).astype(dtype)
    z0 = z.copy()
    with pytest.raises(RuntimeError, match="without a preceding forward"):
        crit.backward()
    loss = crit(z, target)
    assert isinstance(loss, float)
    dz = crit.backward()
    assert dz.dtype == dtype and dz.shape == z.shape and np.array_equal(z, z0)
    with pytest.raises(RuntimeError, match="without a preceding forward"):
        crit.backward()


# -- mistakes a first custom layer makes, each named (found writing tutorials/00_modules_and_objects) --------------
class _Forgetful(nnp.Module):
    """A forward that keeps nothing for backward."""
    def forward(self, x):
        return 2 * x

    def backward(self, dy):
        self._take_cache()
        return 2 * dy


class _Double(nnp.Module):
    def forward(self, x):
        self._save()
        return 2 * x

    def backward(self, dy):
        self._take_cache()
        return 2 * dy


class _NoReturn(_Double):
    def backward(self, dy):
        super().backward(dy)          # forgets `return`


def test_a_forward_that_saved_nothing_is_named():
    m = _Forgetful()
    m(np.ones(3))
    with pytest.raises(RuntimeError, match="forward\\(\\) ran but kept nothing.*self._save"):
        m.backward(np.ones(3))
    with pytest.raises(RuntimeError, match="without a preceding forward"):      # and the flag does not linger
        m.backward(np.ones(3))


def test_a_second_backward_and_a_cleared_cache_still_say_forward_first():
    m = _Double()
    m(np.ones(3))
    m.backward(np.ones(3))
    with pytest.raises(RuntimeError, match="without a preceding forward"):
        m.backward(np.ones(3))
    m(np.ones(3))
    m.clear_cache()
    with pytest.raises(RuntimeError, match="without a preceding forward"):
        m.backward(np.ones(3))


@pytest.mark.parametrize("backend_name", ["numpy", "numba"])
def test_a_backward_that_returns_nothing_is_named_in_a_sequential(backend_name):
    with nnp.backend.use(backend_name):
        net = nnp.Sequential(nnp.Linear(3, 4, rng=0), nnp.ReLU(), _NoReturn(), nnp.Linear(4, 2, rng=1))
        y = net(np.ones((5, 3), np.float32))
        with pytest.raises(TypeError, match=r"layer 2 \(_NoReturn\) of the Sequential returned NoneType from backward"):
            net.backward(np.ones_like(y))


def _cell_run_twice(cls_name, module_name):
    """The namespaces of a notebook cell that defines and registers ``cls_name``, run twice."""
    src = ("import nnumpy as nnp\n"
           "@nnp.register_module\n"
           f"class {cls_name}(nnp.Module):\n"
           "    def forward(self, x):\n"
           "        return x\n")
    runs = []
    for _ in range(2):
        ns = {"__name__": module_name}
        exec(src, ns)
        runs.append(ns)
    return src, runs


def test_registering_a_class_defined_again_replaces_it():
    src, (first, second) = _cell_run_twice("_TwiceDefined", "nb_cell")   # no error: the new class wins
    from nnumpy.serialization import _REGISTERED
    assert _REGISTERED["_TwiceDefined"] is second["_TwiceDefined"]
    other = {"__name__": "another_module"}
    with pytest.raises(ValueError, match="is taken by"):      # a different class under the same name: refused
        exec(src, other)


def test_a_module_can_have_only_one_place_in_a_model():
    lin = nnp.Linear(4, 4, rng=0)
    with pytest.raises(ValueError, match=r"as '2': it is already part of the model.*second.weight = first.weight"):
        nnp.Sequential(lin, nnp.Tanh(), lin)
    inner = nnp.Sequential(lin, nnp.ReLU())
    with pytest.raises(ValueError, match="the Linear inside it is already part"):
        nnp.Sequential(nnp.Sequential(lin), nnp.Tanh(), inner)
    seq = nnp.Sequential(nnp.Linear(2, 2, rng=0))
    with pytest.raises(ValueError, match="already part"):
        seq.append(seq[0])
    with pytest.raises(ValueError, match="already part"):
        seq.append(seq)                                   # a cycle
    assert len(seq) == 1

    class Block(nnp.Module):
        def __init__(self):
            super().__init__()
            self.a = nnp.Linear(2, 2, rng=0)
    blk = Block()
    first = blk.a
    with pytest.raises(ValueError, match="already part"):
        blk.b = blk.a
    assert list(blk._modules) == ["a"]                    # a refused assignment changes nothing
    blk.a = nnp.Linear(2, 2, rng=1)                        # replacing a module by a new one is fine
    blk.a = first                                          # ... and by the one it replaced
    assert blk.a is first


def test_tied_weights_count_once_and_get_both_gradients():
    a, b = nnp.Linear(4, 4, dtype=np.float64, rng=0), nnp.Linear(4, 4, dtype=np.float64, rng=1)
    b.weight = a.weight
    m = nnp.Sequential(a, nnp.Tanh(), b)
    assert [n for n, _ in m.named_parameters()] == ["0.weight", "0.bias", "2.bias"]
    assert len(list(m.named_parameters(remove_duplicate=False))) == 4
    assert m.num_parameters() == 16 + 4 + 4
    assert list(m.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]    # torch's keys and order
    nnp.optim.SGD(m.parameters(), lr=0.1)                 # no "appears more than once"
    x = np.random.default_rng(0).standard_normal((3, 4))
    assert nnp.gradcheck(m, x).ok


class _Boom(nnp.Module):
    fail = False

    def forward(self, x):
        if self.fail:
            raise ValueError("boom")
        self._save()
        return x

    def backward(self, dy):
        self._take_cache()
        return dy


@pytest.mark.parametrize("backend_name", ["numpy", "numba"])
def test_a_forward_that_failed_half_way_leaves_no_cache(backend_name):
    with nnp.backend.use(backend_name):
        boom = _Boom()
        s = nnp.Sequential(nnp.Linear(3, 4, rng=0), boom, nnp.Linear(4, 2, rng=1))
        s(np.ones((5, 3), np.float32))
        boom.fail = True
        with pytest.raises(ValueError, match="boom"):
            s(np.zeros((5, 3), np.float32))
        with pytest.raises(RuntimeError, match="without a preceding forward"):
            s.backward(np.ones((5, 2), np.float32))          # not a backward mixing two inputs


@pytest.mark.parametrize("name, error", [("forward", "already has an attribute"), ("_parameters", "already has"),
                                         ("a.b", "without '.'"), ("", "non-empty"), (None, "is a string")])
def test_add_module_checks_the_name(name, error):
    s = nnp.Sequential(nnp.Linear(2, 2, rng=0))
    with pytest.raises((ValueError, TypeError), match=error):
        s.add_module(name, nnp.Tanh())
    assert len(s) == 1


def test_a_model_of_a_class_defined_again_still_saves(tmp_path):
    _, (old, new) = _cell_run_twice("_Cell", "nb_cell_2")
    model = nnp.Sequential(nnp.Linear(2, 2, rng=0), old["_Cell"]())     # built before the cell ran again
    back = nnp.load(nnp.save(model, tmp_path / "m.npz"))
    assert type(back[1]) is new["_Cell"]


def test_classes_made_by_a_function_do_not_replace_each_other():
    def make():
        class Made(nnp.Module):
            def forward(self, x):
                return x
        return Made
    first, second = make(), make()
    nnp.register_module(first, name="_MadeA")
    with pytest.raises(ValueError, match="is taken by"):
        nnp.register_module(second, name="_MadeA")


# -- tied weights and changed MLPs through save/load, checkpoints and PyTorch ---------------------------------
def _tied_model():
    a, b = nnp.Linear(4, 4, dtype=np.float64, rng=0), nnp.Linear(4, 4, dtype=np.float64, rng=1)
    b.weight = a.weight
    return nnp.Sequential(a, nnp.Tanh(), b)


def test_save_refuses_tied_weights_and_a_checkpoint_keeps_them(tmp_path):
    from nnumpy.serialization import NotDescribable
    model = _tied_model()
    with pytest.raises(NotDescribable, match="tied weights: 0.weight and 2.weight are one Parameter"):
        nnp.save(model, tmp_path / "m.npz")
    assert not list(tmp_path.iterdir())
    nnp.save_checkpoint(tmp_path / "c.npz", model)        # weights only: the model is passed back at load
    again = _tied_model()
    again[0].weight.data[...] = 0
    nnp.load_checkpoint(tmp_path / "c.npz", again)
    assert again[0].weight is again[2].weight
    np.testing.assert_array_equal(again[0].weight.data, model[0].weight.data)


@pytest.mark.parametrize("change", ["append", "add_module"])
def test_an_mlp_changed_after_it_was_built_is_saved_as_it_is(tmp_path, change):
    model = nnp.MLP([3, 4, 2], rng=0)
    if change == "append":
        model.append(nnp.Sigmoid())
    else:
        model.add_module("1", nnp.Tanh())
    back = nnp.load(nnp.save(model, tmp_path / "m.npz"))
    assert [type(m) for m in back] == [type(m) for m in model]
    x = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)
    np.testing.assert_array_equal(back(x), model(x))
    plain = nnp.load(nnp.save(nnp.MLP([3, 4, 2], rng=0), tmp_path / "p.npz"))
    assert type(plain) is nnp.MLP                          # an unchanged MLP stays an MLP


def test_ties_cross_to_and_from_torch(torch):
    from nnumpy import interop
    model = _tied_model()
    t = interop.to_torch(model)
    assert t[0].weight is t[2].weight and sum(p.numel() for p in t.parameters()) == 24
    lin = torch.nn.Linear(4, 4).double()
    back = interop.from_torch(torch.nn.Sequential(lin, torch.nn.Tanh(), lin))      # one module used twice
    assert len(back) == 3 and back[0].weight is back[2].weight and back[0].bias is back[2].bias
    x = np.random.default_rng(0).standard_normal((3, 4))
    np.testing.assert_allclose(back(x), torch.nn.Sequential(lin, torch.nn.Tanh(), lin)(torch.from_numpy(x))
                               .detach().numpy(), rtol=1e-12, atol=1e-14)
    ta, tb = torch.nn.Linear(4, 4), torch.nn.Linear(4, 4)
    tb.weight = ta.weight
    tied = interop.from_torch(torch.nn.Sequential(ta, torch.nn.Tanh(), tb))
    assert tied[0].weight is tied[2].weight and tied[0].bias is not tied[2].bias
    bn = torch.nn.BatchNorm1d(4)
    with pytest.raises(TypeError, match="appears twice in the model and has buffers"):
        interop.from_torch(torch.nn.Sequential(bn, bn))


class _WrongShape(_Double):
    def backward(self, dy):
        super().backward(dy)
        return dy.sum(axis=0)          # dx of the wrong shape


@pytest.mark.parametrize("backend_name", ["numpy", "numba"])
@pytest.mark.parametrize("where", [0, 2])
def test_a_backward_that_returns_the_wrong_shape_is_named(backend_name, where):
    with nnp.backend.use(backend_name):
        layers = [nnp.Linear(3, 4, rng=0), nnp.ReLU(), nnp.Linear(4, 2, rng=1)]
        layers.insert(where, _WrongShape())
        net = nnp.Sequential(*layers)
        y = net(np.ones((5, 3), np.float32))
        with pytest.raises(ValueError, match=rf"layer {where} \(_WrongShape\) of the Sequential returned dx of "
                                             rf"shape \(\d+,\) from backward, but its input had shape \(5, \d\)"):
            net.backward(np.ones_like(y))
