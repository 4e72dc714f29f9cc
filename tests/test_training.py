"""fit / evaluate / predict, mini-batches and splits."""
import numpy as np
import pytest

import nnumpy as nnp


def blobs(n=64, d=10, classes=4, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)).astype(np.float32), rng.integers(0, classes, n)


def test_small_mlp_overfits_64_samples():
    x, y = blobs()                     # random labels: only memorisation fits them
    model = nnp.MLP([10, 64, 4], rng=0)
    opt = nnp.optim.Adam(model.parameters(), lr=1e-2)
    hist = nnp.fit(model, nnp.CrossEntropyLoss(), opt, (x, y), epochs=150, batch_size=16, seed=0,
                   progress=False)
    loss, acc = nnp.evaluate(model, x, y)
    assert acc == 1.0 and loss < 0.05
    assert hist.train_loss[-1] < hist.train_loss[0]
    assert np.array_equal(nnp.predict(model, x), y)


def run_fit(seed):
    x, y = blobs(200, seed=1)
    model = nnp.MLP([10, 16, 8, 4], dropout=0.1, rng=3)
    opt = nnp.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = nnp.optim.StepLR(opt, step_size=2, gamma=0.5)
    hist = nnp.fit(model, nnp.CrossEntropyLoss(), opt, (x[:150], y[:150]), val=(x[150:], y[150:]),
                   epochs=4, batch_size=64, seed=seed, scheduler=sched, progress=False)
    return hist, model


def test_fit_is_reproducible():
    (h1, m1), (h2, m2) = run_fit(7), run_fit(7)
    for field in ("train_loss", "train_acc", "val_loss", "val_acc", "lr"):
        assert getattr(h1, field) == getattr(h2, field), field
    for k, v in m1.state_dict().items():
        np.testing.assert_array_equal(v, m2.state_dict()[k])
    assert h1.lr == [0.1, 0.1, 0.05, 0.05]
    assert len(h1) == 4 and h1.epoch == [1, 2, 3, 4]
    h3, _ = run_fit(8)
    assert h3.train_loss != h1.train_loss          # another seed, another batch order


def test_history_is_serialisable_and_printable():
    h, _ = run_fit(0)
    d = h.to_dict()
    assert set(d) == {"epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds"}
    assert "val acc" in str(h) and len(str(h).splitlines()) == 5
    assert 1 <= h.best_epoch() <= 4


def test_divergence_names_epoch_and_step():
    x, y = blobs(128)
    x = x * 1e3
    model = nnp.MLP([10, 32, 4], rng=0)
    opt = nnp.optim.SGD(model.parameters(), lr=1e6)
    with pytest.raises(nnp.TrainingDivergedError, match=r"at epoch \d, step \d of 2 \(learning rate 1e\+06\).*lower learning rate"), \
            np.errstate(all="ignore"):
        nnp.fit(model, nnp.CrossEntropyLoss(), opt, (x, y), epochs=3, batch_size=64, progress=False)


def test_fit_with_mse_and_one_hot_targets():
    x, y = blobs(64)
    model = nnp.MLP([10, 32, 4], activation="tanh", rng=0)
    opt = nnp.optim.SGD(model.parameters(), lr=0.5)
    hist = nnp.fit(model, nnp.MSELoss(), opt, (x, nnp.one_hot(y, 4)), epochs=30, batch_size=16,
                   progress=False)
    assert hist.train_loss[-1] < hist.train_loss[0]
    loss, acc = nnp.evaluate(model, x, nnp.one_hot(y, 4), nnp.MSELoss())
    assert acc == pytest.approx(np.mean(nnp.predict(model, x) == y))


def test_evaluate_restores_mode_and_uses_eval():
    x, y = blobs(32)
    model = nnp.MLP([10, 8, 4], dropout=0.9, rng=0)
    a = nnp.evaluate(model, x, y)
    b = nnp.evaluate(model, x, y)
    assert a == b                        # dropout is off in evaluation
    assert model.training


def test_fit_rejects_mismatched_lengths():
    x, y = blobs(32)
    model = nnp.MLP([10, 4], rng=0)
    with pytest.raises(ValueError, match="differ in length"):
        nnp.fit(model, nnp.CrossEntropyLoss(), nnp.optim.SGD(model.parameters(), lr=0.1), (x, y[:-1]))


def test_iterate_minibatches_covers_everything_once():
    x, y = np.arange(10)[:, None].astype(float), np.arange(10)
    batches = list(nnp.iterate_minibatches(x, y, 4, shuffle=True, rng=0))
    assert [len(b[1]) for b in batches] == [4, 4, 2]
    assert sorted(np.concatenate([b[1] for b in batches])) == list(range(10))
    assert all(np.array_equal(bx[:, 0], by) for bx, by in batches)
    assert [len(b[1]) for b in nnp.iterate_minibatches(x, y, 4, drop_last=True)] == [4, 4]
    same = list(nnp.iterate_minibatches(x, y, 4, rng=0))
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(batches, same))
    unshuffled = np.concatenate([b[1] for b in nnp.iterate_minibatches(x, y, 3, shuffle=False)])
    assert list(unshuffled) == list(range(10))
    with pytest.raises(ValueError, match="batch_size"):
        list(nnp.iterate_minibatches(x, y, 0))


@pytest.mark.parametrize("stratify", [False, True])
def test_train_val_split(stratify):
    y = np.repeat(np.arange(5), [100, 200, 300, 150, 250])
    x = np.arange(len(y))
    (xt, yt), (xv, yv) = nnp.train_val_split(x, y, 0.2, seed=0, stratify=stratify)
    assert len(xv) == 200 and len(xt) == 800
    assert sorted(np.concatenate([xt, xv])) == list(range(1000))
    assert np.array_equal(y[xt], yt) and np.array_equal(y[xv], yv)
    if stratify:
        assert np.bincount(yv).tolist() == [20, 40, 60, 30, 50]
    (xt2, _), _ = nnp.train_val_split(x, y, 0.2, seed=0, stratify=stratify)
    assert np.array_equal(xt, xt2)
    with pytest.raises(ValueError, match="val_fraction"):
        nnp.train_val_split(x, y, 1.5)


@pytest.mark.parametrize("val_fraction", [0.1, 1 / 6, 0.25, 0.003])
def test_stratified_split_has_exactly_the_requested_size(val_fraction):
    counts = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]     # MNIST's training labels
    y = np.repeat(np.arange(10), counts)
    (xt, _), (xv, yv) = nnp.train_val_split(np.zeros((len(y), 1)), y, val_fraction, seed=0, stratify=True)
    k = round(60000 * val_fraction)
    assert len(xv) == k and len(xt) == 60000 - k               # 0.1: 54,000 / 6,000
    share = np.asarray(counts) * k / 60000
    assert np.all(np.abs(np.bincount(yv, minlength=10) - share) < 1)   # each class within one of its share
