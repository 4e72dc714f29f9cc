"""What a new user met trying the toolkit (issue 14): accuracy that means something, seeding that holds,
schedulers that fit the loop they are given to, PyTorch's small conveniences."""
import numpy as np
import pytest

import nnumpy as nnp


def binary(n=300, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 20)).astype(np.float32)
    return x, (x[:, :1] > 0).astype(np.float32)


def test_accuracy_of_a_one_output_binary_model_is_thresholded():
    x, y = binary()
    for loss, model in ((nnp.BCEWithLogitsLoss(), nnp.MLP([20, 16, 1], rng=0)),
                        (nnp.BCELoss(), nnp.Sequential(nnp.MLP([20, 16, 1], rng=0), nnp.Sigmoid()))):
        opt = nnp.optim.SGD(model.parameters(), lr=0.1)
        h = nnp.fit(model, loss, opt, (x[:250], y[:250]), (x[250:], y[250:]), epochs=3, progress=False)
        out = model(x[250:])[:, 0]
        expected = ((out > (0 if isinstance(loss, nnp.BCEWithLogitsLoss) else 0.5)) == (y[250:, 0] > 0.5)).mean()
        assert h.val_acc[-1] == pytest.approx(expected) and h.val_acc[-1] < 1.0
        assert nnp.evaluate(model, x[250:], y[250:], loss)[1] == pytest.approx(expected)


def test_multi_label_accuracy_counts_labels_and_regression_has_none():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((100, 6)).astype(np.float32)
    y = (x[:, :3] > 0).astype(np.float32)
    model = nnp.MLP([6, 8, 3], rng=0)
    out = model(x)
    _, acc = nnp.evaluate(model, x, y, nnp.BCEWithLogitsLoss())
    assert acc == pytest.approx(((out > 0) == (y > 0.5)).mean())
    _, acc = nnp.evaluate(model, x, rng.standard_normal((100, 3)).astype(np.float32), nnp.MSELoss())
    assert np.isnan(acc)
    _, acc = nnp.evaluate(model, x, nnp.one_hot(rng.integers(0, 3, 100), 3), nnp.MSELoss())   # one-hot: argmax
    assert 0 <= acc <= 1
    with pytest.raises(ValueError, match="no class to pick by argmax"):
        nnp.predict(nnp.MLP([6, 4, 1]), x)
    h = nnp.History(epoch=[1], train_loss=[1.0], train_acc=[np.nan], val_loss=[1.0], val_acc=[np.nan], lr=[0.1],
                    seconds=[1.0])
    with pytest.raises(ValueError, match="val_acc has no finite value"):
        h.best_epoch()


def test_manual_seed_reseeds_modules_built_before_it():
    def run():
        d = nnp.Dropout(0.5)
        nnp.manual_seed(123)
        return d(np.ones((1, 64), np.float32))
    np.testing.assert_array_equal(run(), run())


def test_reduce_lr_on_plateau_must_agree_with_the_monitor():
    x, y = binary()
    model = nnp.MLP([20, 4, 2], rng=0)
    opt = nnp.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="create it with mode='max'"):
        nnp.fit(model, nnp.CrossEntropyLoss(), opt, (x, y[:, 0].astype(int)), (x, y[:, 0].astype(int)), epochs=2,
                monitor="val_acc", scheduler=nnp.optim.ReduceLROnPlateau(opt))


def test_one_cycle_must_fit_the_loop():
    x, y = binary()
    yi = y[:, 0].astype(int)
    model = nnp.MLP([20, 4, 2], rng=0)
    opt = nnp.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    per_batch = nnp.optim.OneCycleLR(opt, max_lr=0.5, epochs=3, steps_per_epoch=300 // 64)     # rounds down
    with pytest.raises(ValueError, match="steps_per_epoch=5"):
        nnp.fit(model, nnp.CrossEntropyLoss(), opt, (x, yi), epochs=3, batch_size=64, scheduler=per_batch,
                scheduler_interval="batch")
    with pytest.raises(ValueError, match="scheduler_interval='batch'"):
        nnp.fit(model, nnp.CrossEntropyLoss(), opt, (x, yi), epochs=3, batch_size=64, scheduler=per_batch)


def test_a_changed_freeze_is_refused_on_resume(tmp_path):
    x, y = binary()
    yi = y[:, 0].astype(int)
    model = nnp.MLP([20, 4, 2], rng=0)
    model[0].requires_grad_(False)
    opt = nnp.optim.SGD(model.parameters(), lr=0.1)
    nnp.fit(model, nnp.CrossEntropyLoss(), opt, (x, yi), epochs=1, progress=False, checkpoint=tmp_path / "c.npz")
    model2 = nnp.MLP([20, 4, 2], rng=0)
    opt2 = nnp.optim.SGD(model2.parameters(), lr=0.1)
    with pytest.raises(nnp.ResumeError, match="frozen: \\['0.weight', '0.bias'\\] in the checkpointed run, \\[\\] now"):
        nnp.fit(model2, nnp.CrossEntropyLoss(), opt2, (x, yi), epochs=2, resume=tmp_path / "c.npz")


def test_register_module_needs_get_config_when_the_constructor_takes_arguments():
    class Scale(nnp.Module):
        def __init__(self, s=2.0):
            super().__init__()
            self.s = s
    with pytest.raises(ValueError, match=r"Scale\(s\) takes constructor arguments but does not override get_config"):
        nnp.register_module(Scale)


def test_pytorch_conveniences():
    model = nnp.MLP([3, 4, 2], rng=0)
    opt = nnp.optim.SGD(model.parameters(), lr=0.1)
    opt.zero_grad(set_to_none=True)
    model.zero_grad(set_to_none=False)
    loss = nnp.CrossEntropyLoss()(model(np.zeros((2, 3), np.float32)), np.array([0, 1]))
    assert isinstance(loss, float) and loss.item() == float(loss)
    assert model.double().dtype == np.float64 and model.float().dtype == np.float32
    p = nnp.Parameter(np.zeros(2), requires_grad=False)
    assert not p.requires_grad and p.requires_grad_() is p and p.requires_grad
    with pytest.raises(TypeError, match="no device to move a model to"):
        model.to("cpu")


def test_a_refused_one_cycle_leaves_the_optimizer_as_it_was():
    p = nnp.Parameter(np.zeros(2))
    opt = nnp.optim.SGD([p], lr=0.1, momentum=0.9)
    before = dict(opt.param_groups[0])
    with pytest.raises(ValueError, match="initial_lr"):
        nnp.optim.OneCycleLR(opt, max_lr=1e300, total_steps=10, div_factor=1e-10)
    assert opt.param_groups[0] == before


def test_summary_counts_a_custom_block_with_its_own_parameters():
    class Block(nnp.Module):
        def __init__(self):
            super().__init__()
            self.inner = nnp.Sequential(nnp.Linear(16, 16, rng=0), nnp.ReLU())
            self.gamma = nnp.Parameter(np.ones(16, np.float32))

        def forward(self, x):
            y = self.inner(x)
            self._save(y=y)
            return x + self.gamma.data * y

        def backward(self, dy):
            y = self._take_cache()["y"]
            self.gamma.grad += (dy * y).sum(0)
            return dy + self.inner.backward(dy * self.gamma.data)

    model = nnp.Sequential(nnp.Linear(8, 16, rng=0), Block(), nnp.Linear(16, 2, rng=0))
    s = nnp.summary(model, (8,), print_table=False)
    assert s.total_params == model.num_parameters() == 466
    row = next(r for r in s.rows if r["type"] == "Block")
    assert row["params"] == 288 and {k for k, *_ in row["saved"]} == {"y", "inner.0.x", "inner.1.mask"}
