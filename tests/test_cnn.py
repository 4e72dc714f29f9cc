"""Convolutional networks end to end: nnumpy.models, Sequential's conv fusion,
save/load with buffers, PyTorch interchange, summary, gradcheck's kink
handling, and the command line with --model."""
import json
import subprocess
import sys

import numpy as np
import pytest

import nnumpy as nnp
from nnumpy import backend, interop, models
from nnumpy.nn import BatchNorm2d, Conv2d, MaxPool2d, ReLU

DTYPES = [np.float32, np.float64]


def images(n, seed=0, dtype=np.float64):
    return np.random.default_rng(seed).random((n, 1, 28, 28)).astype(dtype)


# -- the models -----------------------------------------------------------------------------------
def test_lenet5_shape_and_size():
    m = models.lenet5(rng=0)
    assert m.num_parameters() == 61_706
    assert m(images(3, dtype=np.float32)).shape == (3, 10)
    assert list(m.state_dict()) == ["0.weight", "0.bias", "3.weight", "3.bias", "7.weight", "7.bias",
                                    "9.weight", "9.bias", "11.weight", "11.bias"]
    assert not m.input_grad


def test_same_seed_same_model_for_both_dtypes():
    a, b = models.small_cnn(rng=3), models.small_cnn(rng=3, dtype=np.float64)
    for (k, v), (k2, w) in zip(a.state_dict().items(), b.state_dict().items()):
        assert k == k2
        np.testing.assert_array_equal(v, w.astype(v.dtype))


@pytest.mark.parametrize("bad, match", [
    (dict(activation="swish"), "activation must be one of"),
    (dict(pool="median"), "pool must be 'max' or 'avg'"),
    (dict(num_classes=0), "num_classes"),
])
def test_lenet5_rejects_bad_arguments(bad, match):
    with pytest.raises((ValueError, TypeError), match=match):
        models.lenet5(**bad)


def test_build_model_names_the_choices():
    with pytest.raises(ValueError, match="lenet5"):
        models.build_model("resnet")


# -- Sequential fuses Conv2d + activation on the numba backend ----------------------------------------
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("name", list(models.MODELS))
def test_fused_plan_matches_the_layer_by_layer_reference(name, dtype):
    """The same model, forward and backward, on the numba backend (conv+activation fused)
    and on the numpy backend (layer by layer): outputs and every gradient agree to rounding."""
    x = images(5, seed=1, dtype=dtype)
    dy = np.random.default_rng(2).standard_normal((5, 10)).astype(dtype)
    results = {}
    for be in ("numpy", "numba"):
        with backend.use(be):
            m = models.build_model(name, dtype=dtype, rng=4, input_grad=True)
            y = m(x)
            dx = m.backward(dy)
            results[be] = [y, dx] + [p.grad.copy() for p in m.parameters()] + [b.copy() for b in m.buffers()]
            assert m._plan(be == "numba") is not None
    tol = 1e-4 if dtype == np.float32 else 1e-11
    for a, b in zip(results["numpy"], results["numba"]):
        scale = max(np.abs(a).max(), 1e-30)
        assert np.isfinite(a).all() and np.isfinite(b).all()
        assert np.abs(a.astype(np.float64) - b).max() <= tol * scale


def test_conv_and_activation_run_as_one_step_on_numba():
    m = nnp.Sequential(Conv2d(1, 2, 3, rng=0), ReLU(), MaxPool2d(2))
    steps = m._plan(True)
    assert steps == [(m[0], m[1], "relu", m[2])] and m._plan(False) == [(x, None, None, None) for x in m]
    with backend.use("numba"):
        m(images(2, dtype=np.float32))
    assert m[0]._cache.get("fused") and m[1]._cache.get("fused") and m[2]._cache.get("fused")
    with pytest.raises(RuntimeError, match="ran fused"):
        m[2].backward(np.ones((2, 2, 13, 13), np.float32))
    assert "y" in m[0]._cache and m[0]._cache["y"].shape == (2, 2, 13, 13)     # only the pooled output is kept


def test_a_pool_that_does_not_fit_the_fused_convolution_is_named():
    m = nnp.Sequential(Conv2d(1, 2, 3, rng=0), ReLU(), MaxPool2d(5))
    with backend.use("numba"), pytest.raises(ValueError, match=r"MaxPool2d.*in layer '2'"):
        m(np.zeros((1, 1, 5, 5), np.float32))


def test_first_conv_skips_dx_when_no_input_grad(monkeypatch):
    m = models.lenet5(rng=0)                                # input_grad=False
    calls = []
    with backend.use("numba"):
        ops = backend.ops("numba")
        for name in ("conv2d_act_backward", "conv2d_act_pool_backward"):
            def spy(*args, _original=getattr(ops, name), **kwargs):
                calls.append(kwargs.get("need_dx"))
                return _original(*args, **kwargs)
            monkeypatch.setattr(ops, name, spy)
        out = m(images(2, dtype=np.float32))
        assert m.backward(np.ones_like(out)) is None
    assert calls == [True, False]                           # second conv needs dx, the first does not


# -- save / load and buffers ----------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(models.MODELS))
def test_save_load_round_trip_with_buffers(name, tmp_path):
    m = models.build_model(name, rng=5)
    x = images(4, dtype=np.float32)
    for _ in range(3):                                      # move the running statistics
        m(x)
        m.clear_cache()
    nnp.save(m, tmp_path / "m.npz")
    back = nnp.load(tmp_path / "m.npz")
    assert list(back.state_dict()) == list(m.state_dict())
    for (k, a), b in zip(m.state_dict().items(), back.state_dict().values()):
        assert a.dtype == b.dtype and np.array_equal(a, b), k
    m.eval(), back.eval()
    np.testing.assert_array_equal(m(x), back(x))


def test_load_refuses_a_buffer_of_the_wrong_dtype(tmp_path):
    m = models.small_cnn(rng=0)
    nnp.save(m, tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz") as f:
        arrays = {k: f[k] for k in f.files}
    arrays["1.num_batches_tracked"] = arrays["1.num_batches_tracked"].astype(np.float32)
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(nnp.ModelFileError, match="1.num_batches_tracked is float32"):
        nnp.load(tmp_path / "bad.npz")


@pytest.mark.parametrize("change, match", [
    ({"kernel_size": 0}, "kernel_size"),
    ({"padding": "full"}, "padding"),
    ({"groups": 4}, "divisible"),
])
def test_load_refuses_a_bad_conv_description(tmp_path, change, match):
    m = nnp.Sequential(Conv2d(2, 2, 3, rng=0))
    nnp.save(m, tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz") as f:
        arrays = {k: f[k] for k in f.files}
    meta = json.loads(str(arrays["__nnumpy__"]))
    meta["architecture"]["children"][0]["config"].update(change)
    arrays["__nnumpy__"] = np.array(json.dumps(meta))
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(nnp.ModelFileError, match=match):
        nnp.load(tmp_path / "bad.npz")


def test_state_dict_order_and_to_dtype_with_buffers():
    bn = BatchNorm2d(3)
    assert list(bn.state_dict()) == ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    bn.to(np.float64)
    assert bn.running_mean.dtype == np.float64 and bn.num_batches_tracked.dtype == np.int64
    assert [n for n, _ in bn.named_buffers()] == ["running_mean", "running_var", "num_batches_tracked"]
    assert len(bn.parameters()) == 2                        # buffers are not parameters


# -- PyTorch interchange -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(models.MODELS))
def test_to_and_from_torch_keep_every_entry(torch, name):
    m = models.build_model(name, rng=6, dtype=np.float64)
    m(images(4))
    m.clear_cache()
    t = interop.to_torch(m)
    assert list(t.state_dict()) == list(m.state_dict())
    for k, v in t.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), m.state_dict()[k])
    back = interop.from_torch(t)
    for (k, a), b in zip(m.state_dict().items(), back.state_dict().values()):
        assert a.dtype == b.dtype and np.array_equal(a, b), k


@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
@pytest.mark.parametrize("name", list(models.MODELS))
def test_compare_with_torch_on_the_models(torch, name, train):
    m = models.build_model(name, rng=7)
    y = np.arange(6) % 10
    r64 = interop.compare_with_torch(m, images(6), y, train=train)
    assert r64.ok and r64.max_rel_error < 1e-12, str(r64)
    r32 = interop.compare_with_torch(m, images(6), y, dtype=np.float32, train=train)
    assert r32.ok and r32.max_rel_error < 1e-4, str(r32)
    names = [r["name"] for r in r64.rows]
    assert ("1.running_mean" in names) == (train and name == "small-cnn")


def test_compare_with_torch_refuses_training_mode_with_dropout(torch):
    m = nnp.Sequential(Conv2d(1, 2, 3, rng=0), nnp.nn.Dropout2d(0.5), nnp.Flatten(), nnp.Linear(1352, 10, rng=0))
    with pytest.raises(ValueError, match="dropout"):
        interop.compare_with_torch(m, images(2), np.array([0, 1]), train=True)


# -- summary -------------------------------------------------------------------------------------------------
def test_summary_separates_per_sample_and_per_batch_memory():
    s = nnp.summary(models.small_cnn(), (1, 28, 28))
    bn = s.rows[1]
    assert bn["type"] == "BatchNorm2d" and bn["output_shape"] == (-1, 16, 28, 28)
    assert [n for n, *_ in bn["saved"]] == ["xhat"] and bn["saved"][0][3] == 16 * 28 * 28 * 4
    assert bn["fixed"] == [("inv_std", (16,), "float32", 64)]
    assert s.saved_bytes_fixed == 3 * 0 + 16 * 4 + 32 * 4 + 32 * 4
    assert "per batch" in str(s)


# -- gradcheck near kinks --------------------------------------------------------------------------------------
def test_gradcheck_skips_entries_on_a_kink_but_not_a_wrong_gradient():
    x = np.array([[0.3, -2e-6, 0.7, -0.4]])                 # one entry within eps of the ReLU kink
    r = nnp.gradcheck(ReLU(), x)
    assert r.ok and r.rows[0]["skipped"] == 1 and r.rows[0]["checked"] == 3, str(r)
    assert "not judged" in str(r)

    class WrongReLU(ReLU):
        def backward(self, dy):
            return 1.01 * super().backward(dy)
    r = nnp.gradcheck(WrongReLU(), x)
    assert not r.ok and r.rows[0]["skipped"] == 1


def test_gradcheck_fails_when_every_entry_sits_on_a_kink():
    r = nnp.gradcheck(ReLU(), np.array([[1e-6, -1e-6]]))
    assert not r.ok and "within eps of a kink" in r.rows[0]["note"]


def test_gradcheck_passes_lenet5_in_float64():
    r = nnp.gradcheck(models.lenet5(rng=1), images(3, seed=3), target=np.array([1, 2, 3]),
                      loss=nnp.CrossEntropyLoss(), max_checks=15, seed=2)
    assert r.ok, str(r)


# -- the command line ---------------------------------------------------------------------------------------------
def nnumpy(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "nnumpy", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


def test_train_lenet5_and_evaluate(tmp_path, mnist_dir):
    out = tmp_path / "run"
    r = nnumpy("train", "--model", "lenet5", "--epochs", 1, "--lr", 0.05, "--data-root", mnist_dir, "--out", out,
               "--limit-train", 1500, "--limit-test", 300, "--quiet")
    assert r.returncode == 0, r.stderr
    assert "training lenet5 on mnist" in r.stdout
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["model"] == "lenet5" and cfg["arch"] is None
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["model"] == "lenet5" and 0.1 < metrics["test_acc"] <= 1
    r = nnumpy("evaluate", out)
    assert r.returncode == 0, r.stderr
    assert json.loads((out / "evaluation" / "evaluation.json").read_text())["test_acc"] == pytest.approx(
        metrics["test_acc"])


@pytest.mark.parametrize("args, match", [
    (["train", "--model", "lenet5", "--arch", "784-10"], "--arch describes the layers of --model mlp"),
    (["train", "--model", "lenet5", "--activation", "tanh"], "--activation describes"),
    (["train", "--model", "alexnet"], "invalid choice"),
    (["gradcheck", "--model", "small-cnn", "--arch", "784-10"], "--arch describes"),
])
def test_model_arguments_are_checked(args, match):
    r = nnumpy(*args)
    assert r.returncode == 2 and match in r.stderr and "Traceback" not in r.stderr


def test_gradcheck_command_with_a_cnn():
    r = nnumpy("gradcheck", "--model", "small-cnn", "--batch", 2, "--max-checks", 4)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "model: small-cnn" in r.stdout and "PASSED" in r.stdout


def test_sweep_variant_with_a_model(tmp_path):
    from nnumpy.runconfig import ConfigError, check_sweep
    spec = {"settings": {"epochs": 1}, "variants": [{"name": "lenet", "model": "lenet5", "lrs": [0.05]}]}
    check_sweep(spec)
    bad = {"settings": {}, "variants": [{"name": "x", "model": "lenet5", "arch": "784-10", "lrs": [0.1]}]}
    with pytest.raises(ConfigError, match="arch and activation describe the model 'mlp' only"):
        check_sweep(bad)
    with pytest.raises(ConfigError, match="model must be 'mlp' or one of"):
        check_sweep({"settings": {}, "variants": [{"name": "x", "model": "vgg", "lrs": [0.1]}]})


def test_summary_leaves_the_running_statistics_alone():
    m = models.small_cnn(rng=0)
    before = m.state_dict()
    nnp.summary(m, (1, 28, 28))
    for k, v in m.state_dict().items():
        assert np.array_equal(v, before[k]), k


def test_dtype_of_a_model_with_buffers_only():
    assert BatchNorm2d(3, affine=False, dtype=np.float64).dtype == np.float64


# -- bad input at the boundary (found by trying 645 of them) ------------------------------------------------
def test_a_sweep_mixing_a_cnn_and_an_mlp_tests_the_favourite_on_its_own_layout(tmp_path, mnist_dir):
    from nnumpy.experiments import sweep
    spec = {"settings": {"epochs": 1, "tune_epochs": 1, "limit_train": 600, "limit_test": 100,
                         "data_root": str(mnist_dir)},
            "variants": [{"name": "mlp", "arch": "784-16-10", "lrs": [0.05]},
                         {"name": "lenet", "model": "lenet5", "lrs": [0.05]}]}
    results = sweep(spec, tmp_path / "s", log=lambda *a: None, progress=False)
    fav = next(r for r in results if "test_acc" in r)
    assert 0 < fav["test_acc"] <= 1 and (tmp_path / "s" / "summary.md").is_file()


def test_evaluate_refuses_a_config_that_does_not_describe_the_model(tmp_path, mnist_dir):
    out = tmp_path / "run"
    r = nnumpy("train", "--arch", "784-16-10", "--epochs", 1, "--data-root", mnist_dir, "--out", out,
               "--limit-train", 600, "--limit-test", 100, "--quiet")
    assert r.returncode == 0, r.stderr
    cfg = json.loads((out / "config.json").read_text())
    cfg.update(model="lenet5", arch=None, activation=None)
    (out / "config.json").write_text(json.dumps(cfg))
    r = nnumpy("evaluate", out)
    assert r.returncode == 2 and "model.npz holds another network" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("layer", [nnp.AvgPool2d(2, divisor_override=-2), nnp.LayerNorm(4, eps=0.0),
                                   nnp.GroupNorm(2, 4, eps=0.0), nnp.BatchNorm2d(4, eps=0.0)],
                         ids=["divisor", "layernorm-eps0", "groupnorm-eps0", "batchnorm-eps0"])
def test_what_save_writes_load_reads(layer, tmp_path):
    nnp.save(nnp.Sequential(layer), tmp_path / "m.npz")
    assert nnp.load(tmp_path / "m.npz")[0].get_config() == layer.get_config()


@pytest.mark.parametrize("be", ["numpy", "numba"])
def test_empty_batches_pass_through_the_models(be):
    with backend.use(be):
        for name in models.MODELS:
            m = models.build_model(name, rng=0, input_grad=True)
            if name == "small-cnn":
                m.eval()                              # batch statistics of no sample are refused in training
            y = m(np.zeros((0, 1, 28, 28), np.float32))
            assert y.shape == (0, 10)
            assert m.backward(y).shape == (0, 1, 28, 28)


@pytest.mark.parametrize("make", [lambda: Conv2d(1, 1, 3, stride=10 ** 20), lambda: MaxPool2d(2, stride=2 ** 63),
                                  lambda: MaxPool2d(2, stride=np.array([2, 2])), lambda: Conv2d(1, 1, 2 ** 40)],
                         ids=["conv-stride", "pool-stride", "array-stride", "kernel"])
def test_huge_or_array_hyper_parameters_are_refused_at_construction(make):
    with pytest.raises((ValueError, TypeError), match="stride|kernel_size"):
        make()


def test_zero_dimensional_arrays_are_integers():
    assert Conv2d(1, 1, np.array(3), rng=0).kernel_size == (3, 3)


@pytest.mark.parametrize("entry, value, match", [
    ("1.num_batches_tracked", -1, "whole number >= 0"),
    ("1.num_batches_tracked", 2.5, "whole number >= 0"),
    ("1.running_var", -np.ones(16, np.float32), "negative"),
])
def test_batch_norm_state_is_checked_on_load(entry, value, match, tmp_path):
    m = models.small_cnn(rng=0)
    state = m.state_dict()
    state[entry] = np.asarray(value, dtype=state[entry].dtype if entry.endswith("var") else None)
    with pytest.raises(nnp.StateDictError, match=match):
        m.load_state_dict(state)
    nnp.save(m, tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz") as f:
        arrays = {k: f[k] for k in f.files}
    arrays[entry] = np.asarray(value).astype(arrays[entry].dtype)
    np.savez(tmp_path / "bad.npz", **arrays)
    if entry.endswith("tracked") and value == 2.5:
        return                                        # int64 in the file: 2.5 cannot be written there
    with pytest.raises(nnp.ModelFileError, match=match):
        nnp.load(tmp_path / "bad.npz")


def test_summary_tells_per_batch_from_per_sample_with_three_channels():
    s = nnp.summary(nnp.Sequential(BatchNorm2d(3), nnp.Flatten(), nnp.Linear(48, 2)), (3, 4, 4))
    assert s.rows[0]["fixed"] == [("inv_std", (3,), "float32", 12)]
    assert [n for n, *_ in s.rows[0]["saved"]] == ["xhat"]


@pytest.mark.parametrize("shape", ["x", 2.5, (-1,), None, (10 ** 9, 10 ** 9)])
def test_summary_refuses_bad_input_shapes(shape):
    with pytest.raises((ValueError, TypeError), match="summary: input_shape"):
        nnp.summary(models.lenet5(), shape)


def test_errors_inside_a_sequential_name_the_layer_and_the_network_input():
    with pytest.raises(ValueError, match=r"Linear\(400, 120\).*in layer '7' of the Sequential, whose input had "
                                         r"shape \(2, 1, 32, 32\)"):
        models.lenet5()(np.zeros((2, 1, 32, 32), np.float32))


def test_one_image_without_its_batch_dimension_gets_a_hint():
    with pytest.raises(ValueError, match=r"for one image use x\[None\]"):
        nnp.predict(models.lenet5(), np.zeros((1, 28, 28), np.float32))


@pytest.mark.parametrize("mask, match", [([1, 0, 1], "NumPy array"),
                                         (np.array([[1, 0, np.nan], [1, 1, 1]]), "only 0 .drop. and 1"),
                                         (np.array([[1, 0, 2], [1, 1, 1]]), "only 0 .drop. and 1")])
def test_dropout2d_masks_are_checked(mask, match):
    x = np.ones((2, 3, 4, 4), np.float32)
    for layer in (nnp.Dropout2d(0.5), nnp.Dropout2d(0.5).eval()):
        with pytest.raises((ValueError, TypeError), match=match):
            layer(x, mask=mask)


def test_from_torch_names_unsupported_dtypes(torch):
    with pytest.raises(TypeError, match="bfloat16"):
        interop.from_torch(torch.nn.Conv2d(1, 2, 3).to(torch.bfloat16))


# -- hyper-parameters set after construction ---------------------------------------------------
BACKENDS_HERE = backend.available_backends()


@pytest.mark.parametrize("be", BACKENDS_HERE)
def test_hyper_parameters_set_after_construction_are_used_as_pytorch_does(be, torch):
    """conv.padding / stride / dilation and pool.kernel_size / stride / padding / dilation
    set on a built layer change what it computes (they were kept as given but the layer
    computed from its first values), are checked when set, and an int works as a pair."""
    F = torch.nn.functional
    x = np.random.default_rng(0).standard_normal((2, 3, 11, 11))
    xt = torch.tensor(x)
    with backend.use(be):
        conv = Conv2d(3, 4, 3, dtype=np.float64, rng=0)
        relu, pool = ReLU(), MaxPool2d(2)
        net = nnp.Sequential(conv, relu, pool)
        net(x)
        conv.padding, conv.stride, conv.dilation = 1, 2, (1, 2)
        pool.kernel_size, pool.stride, pool.padding, pool.dilation = 3, 1, 1, 1
        assert conv.stride == (2, 2) and conv.padding == (1, 1) and pool.kernel_size == 3
        y = net(x)
        wt, bt = torch.tensor(conv.weight.data), torch.tensor(conv.bias.data)
        yt = F.max_pool2d(F.relu(F.conv2d(xt, wt, bt, stride=2, padding=1, dilation=(1, 2))), 3, 1, 1)
        np.testing.assert_allclose(y, yt.numpy(), rtol=1e-12, atol=1e-12)
        with pytest.raises(ValueError, match="needs stride 1"):
            conv.padding = "same"
        with pytest.raises(ValueError, match="at most half"):
            pool.padding = 2
        assert conv.padding == (1, 1) and pool.padding == 1          # a refused value changes nothing


@pytest.mark.parametrize("be", BACKENDS_HERE)
@pytest.mark.parametrize("fused", [True, False])
def test_backward_uses_the_forward_pass_hyper_parameters(be, fused):
    """Changing a layer's stride or slope between forward and backward does not change the
    gradients of the forward that ran (the fused numba step used to mix the two)."""
    x = np.random.default_rng(1).standard_normal((2, 6, 9, 9))

    def run(change):
        with backend.use(be):
            conv = Conv2d(6, 4, 3, padding=1, dtype=np.float64, rng=0)
            act = nnp.LeakyReLU(0.1)
            layers = [conv, act, MaxPool2d(2)]
            net = nnp.Sequential(*layers) if fused else None
            y = net(x) if fused else layers[2](act(conv(x)))
            if change:
                conv.stride, act.negative_slope, layers[2].kernel_size = 2, 0.3, 3
            dy = np.ones_like(y)
            dx = net.backward(dy) if fused else conv.backward(act.backward(layers[2].backward(dy)))
            return dx, conv.weight.grad.copy(), conv.bias.grad.copy()
    for a, b in zip(run(False), run(True)):
        assert np.array_equal(a, b)


def test_fused_conv_tanh_pool_carries_nan_as_the_unfused_layers():
    """A NaN convolution output outside every pooling window (or behind another NaN):
    0 * tanh'(NaN) is NaN, so dx, dW and db are NaN on both backends, as in PyTorch."""
    x = np.zeros((1, 1, 3, 3))
    x[0, 0, 2, 2] = np.nan
    out = {}
    for be in BACKENDS_HERE:
        with backend.use(be):
            conv = Conv2d(1, 1, 1, dtype=np.float64, rng=0)
            conv.weight.data[...] = 1.0
            conv.bias.data[...] = 0.0
            net = nnp.Sequential(conv, nnp.Tanh(), MaxPool2d(2))
            y = net(x)
            dx = net.backward(np.ones_like(y))
            out[be] = (dx, conv.weight.grad.copy(), conv.bias.grad.copy())
            assert np.isnan(dx[0, 0, 2, 2]) and np.isnan(conv.weight.grad).all() and np.isnan(conv.bias.grad).all()
    for a, b in zip(*out.values()):
        np.testing.assert_array_equal(a, b)


def test_relu_keeps_a_0d_input_an_array():
    for act in (ReLU(), nnp.LeakyReLU(0.1)):
        y = act(np.array(-1.0))
        dx = act.backward(np.array(2.0))
        assert isinstance(y, np.ndarray) and y.shape == () and isinstance(dx, np.ndarray) and dx.shape == ()
