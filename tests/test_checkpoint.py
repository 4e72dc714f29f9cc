"""Checkpoints, bit-identical resume, early stopping, best weights and callbacks in ``fit``."""
import json
import os
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import nnumpy as nnp
from nnumpy import backend

BACKENDS = backend.available_backends()

# One training script, run in fresh processes: 6 epochs straight, or 3 epochs + checkpoint, then
# (a new process) resume to 6.  Dropout (module generator), Adam/SGD state, a scheduler, the global
# generator and the batch order all take part.
SCRIPT = textwrap.dedent("""
    import sys, numpy as np, nnumpy as nnp
    mode, out, be, opt_name = sys.argv[1:5]
    nnp.set_backend(be)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((240, 12)).astype(np.float32); y = rng.integers(0, 3, 240)
    xv = rng.standard_normal((40, 12)).astype(np.float32); yv = rng.integers(0, 3, 40)
    nnp.manual_seed(5)
    model = nnp.MLP([12, 16, 3], dropout=0.25, rng=1)
    if opt_name == "adam":
        opt = nnp.optim.Adam(model.parameters(), lr=1e-2, weight_decay=1e-3)
    else:
        opt = nnp.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
    sched = nnp.optim.StepLR(opt, 2, gamma=0.5)
    kw = dict(epochs=6, batch_size=16, seed=3, scheduler=sched, progress=False, checkpoint=out,
              patience=50, restore_best=True)
    if mode == "first":
        kw["epochs"] = 3
    if mode == "resume":
        kw["resume"] = sys.argv[5]
    nnp.fit(model, nnp.CrossEntropyLoss(), opt, (x, y), (xv, yv), **kw)
""")


def run(*args):
    subprocess.run([sys.executable, "-c", SCRIPT, *map(str, args)], check=True, timeout=300,
                   env={**os.environ, "PYTHONHASHSEED": "0"})


def contents(path):
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(str(z["__nnumpy_checkpoint__"]))
        arrays = {k: z[k] for k in z.files if k != "__nnumpy_checkpoint__"}
    del meta["history"]["seconds"]                       # wall-clock time: the one thing that differs
    return meta, arrays


@pytest.mark.parametrize("opt_name", ["adam", "sgd"])
@pytest.mark.parametrize("be", BACKENDS)
def test_resume_in_a_new_process_is_bit_identical(tmp_path, be, opt_name):
    straight, part = tmp_path / "straight.npz", tmp_path / "part.npz"
    run("straight", straight, be, opt_name)
    run("first", part, be, opt_name)
    assert contents(part)[0]["epoch"] == 3
    resumed = tmp_path / "resumed.npz"
    run("resume", resumed, be, opt_name, part)
    (m1, a1), (m2, a2) = contents(straight), contents(resumed)
    assert m1["epoch"] == m2["epoch"] == 6
    assert set(a1) == set(a2) and any(k.startswith("optimizer/") for k in a1) and any(k.startswith("best/")
                                                                                       for k in a1)
    for k in a1:
        assert a1[k].dtype == a2[k].dtype and np.array_equal(a1[k], a2[k]), k    # weights, optimizer, best
    assert m1["history"] == m2["history"]                 # every loss, accuracy and rate, exactly
    assert m1["generators"] == m2["generators"]           # the global and the Dropout generator
    assert m1["rng_state"] == m2["rng_state"]             # the batch order's
    assert m1["scheduler"] == m2["scheduler"] and m1["optimizer"] == m2["optimizer"]
    assert m1["extra"] == m2["extra"]


def data(seed=0, n=200):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 8)).astype(np.float32)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(np.int64)
    return (x[:150], y[:150]), (x[150:], y[150:])


def setup(lr=0.1):
    model = nnp.MLP([8, 16, 2], rng=0)
    return model, nnp.optim.SGD(model.parameters(), lr=lr, momentum=0.9)


def test_early_stopping_stops_and_restores_the_best_weights():
    train, val = data()
    model, opt = setup(lr=0.5)
    seen = []

    def keep(rec):
        seen.append((rec["epoch"], model.state_dict()))

    h = nnp.fit(model, nnp.CrossEntropyLoss(), opt, train, val, epochs=60, batch_size=10, progress=False,
                patience=3, restore_best=True, callbacks=[keep])
    best = int(np.argmin(h.val_loss))
    assert len(h) < 60                                    # it stopped early ...
    assert len(h) - 1 - best == 3                         # ... three epochs after the best one
    assert all(h.val_loss[best] <= v for v in h.val_loss)
    for k, v in model.state_dict().items():               # and the model holds the best epoch's weights
        np.testing.assert_array_equal(v, seen[best][1][k])


def test_min_delta_and_mode_max_on_accuracy():
    train, val = data()
    model, opt = setup()
    h = nnp.fit(model, nnp.CrossEntropyLoss(), opt, train, val, epochs=40, batch_size=10, progress=False,
                monitor="val_acc", patience=2, min_delta=0.5)   # no accuracy gains 50 points: stops at epoch 3
    assert len(h) == 3


def test_callable_monitor_needs_a_mode_and_a_number():
    train, val = data()
    model, opt = setup()
    with pytest.raises(ValueError, match="mode='min' or mode='max'"):
        nnp.fit(model, nnp.CrossEntropyLoss(), opt, train, val, epochs=2, monitor=lambda r: r["val_loss"])
    with pytest.raises(nnp.ArgumentTypeError, match="monitor must give a number"):
        nnp.fit(model, nnp.CrossEntropyLoss(), opt, train, val, epochs=2, progress=False,
                monitor=lambda r: "good", mode="max")
    h = nnp.fit(model, nnp.CrossEntropyLoss(), opt, train, val, epochs=30, progress=False, patience=1,
                monitor=lambda r: r["epoch"], mode="max")     # always improves: never stops
    assert len(h) == 30


def test_callbacks_get_each_record_and_can_stop_training():
    train, val = data()
    model, opt = setup()
    records = []

    def stop_at_4(rec):
        records.append(rec)
        if rec["epoch"] == 4:
            raise nnp.StopTraining

    h = nnp.fit(model, nnp.CrossEntropyLoss(), opt, train, val, epochs=10, progress=False, callbacks=[stop_at_4])
    assert len(h) == 4 and [r["epoch"] for r in records] == [1, 2, 3, 4]
    assert set(records[0]) == {"epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds"}
    assert records[-1]["val_loss"] == h.val_loss[-1]


@pytest.mark.parametrize("bad, match", [
    (lambda r: None, None),
    ([1], r"callbacks\[0\] is not callable"),
    ("print", "list of functions"),
])
def test_bad_callbacks_are_refused(bad, match):
    train, val = data()
    model, opt = setup()
    if match is None:                                    # a single function: wrap it in a list
        match = r"wrap it in a list"
    with pytest.raises(nnp.ArgumentTypeError, match=match):
        nnp.fit(model, nnp.CrossEntropyLoss(), opt, train, val, epochs=1, callbacks=bad)


@pytest.mark.parametrize("kw, match", [
    (dict(monitor="val_loss", val=None), "needs validation data"),
    (dict(monitor="accuracy"), "monitor must be one of"),
    (dict(patience=0), "patience"),
    (dict(min_delta=float("nan")), "min_delta"),
    (dict(checkpoint_every=0), "checkpoint_every"),
    (dict(scheduler_interval="step"), "scheduler_interval"),
    (dict(mode="up"), "mode must be"),
])
def test_bad_fit_settings_are_named(kw, match):
    train, val = data()
    model, opt = setup()
    val = kw.pop("val", val)
    with pytest.raises((ValueError, TypeError), match=match):
        nnp.fit(model, nnp.CrossEntropyLoss(), opt, train, val, epochs=1, **kw)


def test_checkpoint_every_n_epochs_and_after_the_last(tmp_path):
    train, val = data()
    model, opt = setup()
    path = tmp_path / "ck.npz"
    epochs_seen = []

    def look(rec):
        epochs_seen.append(nnp.load_checkpoint(path, restore_rng=False).epoch if path.exists() else None)

    nnp.fit(model, nnp.CrossEntropyLoss(), opt, train, val, epochs=5, progress=False, checkpoint=path,
            checkpoint_every=2, callbacks=[look])
    # a callback runs before that epoch's checkpoint is written
    assert epochs_seen == [None, None, 2, 2, 4]
    assert nnp.load_checkpoint(path, restore_rng=False).epoch == 5
    assert [p.name for p in tmp_path.iterdir()] == ["ck.npz"]      # no temporary file left behind


def test_resume_refuses_other_settings_and_too_few_epochs(tmp_path):
    train, val = data()
    model, opt = setup()
    path = tmp_path / "ck.npz"
    nnp.fit(model, nnp.CrossEntropyLoss(), opt, train, val, epochs=3, batch_size=10, progress=False,
            checkpoint=path)
    with pytest.raises(ValueError, match=r"batch_size: 10 in the checkpointed run, 20 now"):
        nnp.fit(model, nnp.CrossEntropyLoss(), opt, train, val, epochs=6, batch_size=20, resume=path)
    with pytest.raises(ValueError, match=r"n_train: 150 in the checkpointed run, 100 now"):
        nnp.fit(model, nnp.CrossEntropyLoss(), opt, (train[0][:100], train[1][:100]), val, epochs=6,
                batch_size=10, resume=path)
    with pytest.raises(ValueError, match="pass epochs >= 3"):
        nnp.fit(model, nnp.CrossEntropyLoss(), opt, train, val, epochs=2, batch_size=10, resume=path)
    sched = nnp.optim.StepLR(opt, 2)
    with pytest.raises(nnp.CheckpointError, match="holds no scheduler state"):
        nnp.fit(model, nnp.CrossEntropyLoss(), opt, train, val, epochs=6, batch_size=10, resume=path,
                scheduler=sched)
    h = nnp.fit(model, nnp.CrossEntropyLoss(), opt, train, val, epochs=3, batch_size=10, resume=path)
    assert len(h) == 3                                   # nothing left to do: the saved history


def test_a_stopped_run_resumes_to_its_end(tmp_path):
    train, val = data()
    model, opt = setup(lr=0.5)
    path = tmp_path / "ck.npz"
    h = nnp.fit(model, nnp.CrossEntropyLoss(), opt, train, val, epochs=60, batch_size=10, progress=False,
                patience=2, checkpoint=path)
    assert len(h) < 60
    model2, opt2 = setup(lr=0.5)
    h2 = nnp.fit(model2, nnp.CrossEntropyLoss(), opt2, train, val, epochs=60, batch_size=10, progress=False,
                 patience=2, resume=path)
    assert h2.val_loss == h.val_loss
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(model2.state_dict()[k], v)


def test_load_checkpoint_rebuilds_the_model_and_checks_before_changing(tmp_path):
    model, opt = setup()
    train, val = data()
    path = tmp_path / "ck.npz"
    nnp.fit(model, nnp.CrossEntropyLoss(), opt, train, val, epochs=2, progress=False, checkpoint=path)
    ck = nnp.load_checkpoint(path, restore_rng=False)
    assert ck.epoch == 2 and len(ck.history) == 2 and ck.optimizer_type == "SGD"
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(ck.model.state_dict()[k], v)
    other = nnp.MLP([8, 16, 2], rng=7)
    before = other.state_dict()
    with pytest.raises(nnp.CheckpointError, match="state of SGD, not of Adam"):
        nnp.load_checkpoint(path, other, nnp.optim.Adam(other.parameters()))
    with pytest.raises(nnp.CheckpointError, match="missing key"):
        nnp.load_checkpoint(path, nnp.MLP([8, 16, 16, 2]))
    with pytest.raises(nnp.CheckpointError, match=r"0\.weight: float32 \(16, 8\) in the checkpoint"):
        nnp.load_checkpoint(path, nnp.MLP([8, 16, 2], dtype=np.float64))
    for k, v in other.state_dict().items():             # nothing was loaded into it
        np.testing.assert_array_equal(v, before[k])


def test_generator_states_are_saved_and_restored(tmp_path):
    model = nnp.MLP([4, 4, 2], dropout=0.5, rng=0)
    nnp.manual_seed(11)
    path = tmp_path / "ck.npz"
    nnp.save_checkpoint(path, model)
    a_global, a_mod = nnp.random.default_generator().random(4), model[2].rng.random(4)
    nnp.manual_seed(99)
    model[2].rng.random(10)
    nnp.load_checkpoint(path, model)
    np.testing.assert_array_equal(nnp.random.default_generator().random(4), a_global)
    np.testing.assert_array_equal(model[2].rng.random(4), a_mod)


@pytest.mark.parametrize("content, match", [
    (b"", "empty"),
    (b"not a zip at all", "not a readable checkpoint"),
])
def test_bad_files_are_named(tmp_path, content, match):
    path = tmp_path / "ck.npz"
    path.write_bytes(content)
    with pytest.raises(nnp.CheckpointError, match=match):
        nnp.load_checkpoint(path)


def test_model_files_and_pickles_are_not_checkpoints(tmp_path):
    model = nnp.MLP([4, 3, 2])
    nnp.save(model, tmp_path / "m.npz")
    with pytest.raises(nnp.CheckpointError, match="load it with nnumpy.load"):
        nnp.load_checkpoint(tmp_path / "m.npz")
    np.savez(tmp_path / "p.npz", __nnumpy_checkpoint__=np.array([{"a": 1}], dtype=object))
    with pytest.raises(nnp.CheckpointError, match="pickled"):
        nnp.load_checkpoint(tmp_path / "p.npz")
    with pytest.raises(nnp.CheckpointError, match="no such checkpoint"):
        nnp.load_checkpoint(tmp_path / "missing.npz")
    truncated = tmp_path / "t.npz"
    nnp.save_checkpoint(truncated, model)
    truncated.write_bytes(truncated.read_bytes()[:-200])
    with pytest.raises(nnp.CheckpointError):
        nnp.load_checkpoint(truncated)


def test_checkpoint_error_survives_pickling():
    e = pickle.loads(pickle.dumps(nnp.CheckpointError("x.npz: broken")))
    assert isinstance(e, nnp.CheckpointError) and str(e) == "x.npz: broken"


def test_fit_steps_reduce_lr_on_plateau_with_the_monitored_metric():
    train, val = data()
    model, opt = setup(lr=0.5)
    sched = nnp.optim.ReduceLROnPlateau(opt, factor=0.5, patience=0)
    h = nnp.fit(model, nnp.CrossEntropyLoss(), opt, train, val, epochs=12, batch_size=10, progress=False,
                scheduler=sched)
    twin_opt = nnp.optim.SGD([nnp.Parameter(np.zeros(1))], lr=0.5)
    twin = nnp.optim.ReduceLROnPlateau(twin_opt, factor=0.5, patience=0)
    expected = []
    for v in h.val_loss:                                   # the rate of each epoch follows the val losses before it
        expected.append(twin_opt.param_groups[0]["lr"])
        twin.step(v)
    assert h.lr == expected and min(h.lr) < 0.5


@pytest.mark.parametrize("be", BACKENDS)
def test_one_cycle_per_batch_and_its_resume(tmp_path, be):
    train, val = data()
    steps = -(-150 // 10)

    def run(epochs, **kw):
        with backend.use(be):
            model, opt = setup()
            sched = nnp.optim.OneCycleLR(opt, max_lr=0.5, epochs=6, steps_per_epoch=steps)
            h = nnp.fit(model, nnp.CrossEntropyLoss(), opt, train, val, epochs=epochs, batch_size=10,
                        progress=False, scheduler=sched, scheduler_interval="batch", **kw)
            return model, sched, h

    model, sched, h = run(6)
    assert sched.last_epoch == 6 * steps
    twin_opt = nnp.optim.SGD([nnp.Parameter(np.zeros(1))], lr=0.1, momentum=0.9)
    twin = nnp.optim.OneCycleLR(twin_opt, max_lr=0.5, epochs=6, steps_per_epoch=steps)
    expected = []
    for e in range(6):
        expected.append(twin_opt.param_groups[0]["lr"])
        for _ in range(steps):
            twin_opt.step()
            twin.step()
    assert h.lr == expected
    run(3, checkpoint=tmp_path / "c.npz")
    model2, sched2, h2 = run(6, resume=tmp_path / "c.npz")
    assert h2.val_loss == h.val_loss and sched2.last_epoch == sched.last_epoch
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(model2.state_dict()[k], v)


def test_reduce_lr_on_plateau_cannot_be_stepped_per_batch():
    train, val = data()
    model, opt = setup()
    with pytest.raises(ValueError, match="once per epoch"):
        nnp.fit(model, nnp.CrossEntropyLoss(), opt, train, val, epochs=1,
                scheduler=nnp.optim.ReduceLROnPlateau(opt), scheduler_interval="batch")


OPTIMIZERS = {
    "sgd": lambda ps: nnp.optim.SGD(ps, lr=0.1, momentum=0.9, maximize=False),
    "adam-amsgrad": lambda ps: nnp.optim.Adam(ps, lr=1e-2, amsgrad=True),
    "adamw": lambda ps: nnp.optim.AdamW(ps, lr=1e-2),
    "rmsprop": lambda ps: nnp.optim.RMSprop(ps, lr=1e-3, momentum=0.5, centered=True),
    "adagrad": lambda ps: nnp.optim.Adagrad(ps, lr=0.05, lr_decay=1e-3, initial_accumulator_value=0.1),
}
SCHEDULERS = {
    "none": None,
    "multistep": lambda o: nnp.optim.MultiStepLR(o, [1, 3], gamma=0.5),
    "exponential": lambda o: nnp.optim.ExponentialLR(o, 0.9),
    "lambda": lambda o: nnp.optim.LambdaLR(o, lambda e: 1 / (1 + e)),
    "warmup-cosine": lambda o: nnp.optim.SequentialLR(o, [nnp.optim.LinearLR(o, 0.2, total_iters=2),
                                                          nnp.optim.CosineAnnealingLR(o, T_max=3)], [2]),
    "plateau": lambda o: nnp.optim.ReduceLROnPlateau(o, patience=0, factor=0.5),
}


@pytest.mark.parametrize("sched_name", list(SCHEDULERS))
@pytest.mark.parametrize("opt_name", list(OPTIMIZERS))
def test_every_optimizer_and_scheduler_resumes_exactly(tmp_path, opt_name, sched_name):
    train, val = data()

    def run(epochs, **kw):
        model = nnp.MLP([8, 16, 2], rng=0, dropout=0.2)
        opt = OPTIMIZERS[opt_name](model.parameters())
        sched = SCHEDULERS[sched_name](opt) if SCHEDULERS[sched_name] else None
        nnp.manual_seed(4)
        h = nnp.fit(model, nnp.CrossEntropyLoss(), opt, train, val, epochs=epochs, batch_size=16, progress=False,
                    scheduler=sched, **kw)
        return model, opt, h

    model, opt, h = run(5)
    run(2, checkpoint=tmp_path / "c.npz")
    model2, opt2, h2 = run(5, resume=tmp_path / "c.npz")
    assert h2.val_loss == h.val_loss and h2.lr == h.lr
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(model2.state_dict()[k], v)
    s1, s2 = opt.state_dict(), opt2.state_dict()
    assert s1["param_groups"] == s2["param_groups"]
    for i, entry in s1["state"].items():
        for name, v in entry.items():
            assert np.array_equal(v, s2["state"][i][name]), (i, name)


# -- crafted and damaged checkpoints: a clear CheckpointError, and nothing changed ---------------------------
def rewrite_meta(path, edit):
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays["__nnumpy_checkpoint__"]))
    edit(meta)
    arrays["__nnumpy_checkpoint__"] = np.array(json.dumps(meta))
    np.savez(path, **arrays)


EDITS = {
    "negative epoch": lambda m: m.update(epoch=-1),
    "epoch a string": lambda m: m.update(epoch="3"),
    "short history": lambda m: m["history"]["val_loss"].pop(),
    "history of strings": lambda m: m["history"].update(train_loss=["a", "b"]),
    "history a list": lambda m: m.update(history=[1]),
    "history epochs out of order": lambda m: m["history"].update(epoch=[2, 1]),
    "history longer than epoch": lambda m: m.update(epoch=1),
    "optimizer a list": lambda m: m.update(optimizer=[1]),
    "optimizer without groups": lambda m: m["optimizer"].pop("param_groups"),
    "optimizer state a list": lambda m: m["optimizer"].update(state=[1]),
    "optimizer entry a string": lambda m: m["optimizer"]["state"].update({"0": "x"}),
    "optimizer array missing": lambda m: m["optimizer"]["state"]["0"]["arrays"].append("ghost"),
    "scheduler a string": lambda m: m.update(scheduler="x"),
    "scheduler without state": lambda m: m["scheduler"].pop("state"),
    "scheduler state garbage": lambda m: m["scheduler"].update(state={"last_epoch": "x"}),
    "rng_state an int": lambda m: m.update(rng_state=5),
    "rng_state bogus dtype": lambda m: m.update(rng_state={"bit_generator": "MT19937", "state": {
        "key": {"__ndarray__": [1, 2], "dtype": "bogus"}, "pos": 0}}),
    "global generator garbage": lambda m: m["generators"].update({"global": {"bit_generator": "PCG64"}}),
    "early stopping empty": lambda m: m["extra"].update(early_stopping={}),
    "early stopping best a string": lambda m: m["extra"]["early_stopping"].update(best="x", best_epoch=1),
    "bad_epochs a string": lambda m: m["extra"]["early_stopping"].update(bad_epochs="x"),
    "bad_epochs negative": lambda m: m["extra"]["early_stopping"].update(bad_epochs=-5),
    "best_epoch beyond": lambda m: m["extra"]["early_stopping"].update(best_epoch=99),
    "stopped a string": lambda m: m["extra"]["early_stopping"].update(stopped="no"),
    "extra a list": lambda m: m.update(extra=[1]),
    "best_keys an int": lambda m: m.update(best_keys=5),
    "best_keys of another model": lambda m: m.update(best_keys=["0.weight"]),
    "state_keys repeated": lambda m: m.update(state_keys=["0.weight", "0.weight"]),
}


@pytest.mark.parametrize("name", list(EDITS))
def test_a_damaged_checkpoint_is_refused_and_changes_nothing(tmp_path, name):
    train, val = data()
    model, opt = setup()
    sched = nnp.optim.StepLR(opt, 1, gamma=0.9)
    path = tmp_path / "c.npz"
    nnp.fit(model, nnp.CrossEntropyLoss(), opt, train, val, epochs=2, progress=False, checkpoint=path,
            scheduler=sched, restore_best=True)
    rewrite_meta(path, EDITS[name])
    model2, opt2 = setup()
    sched2 = nnp.optim.StepLR(opt2, 1, gamma=0.9)
    before = (model2.state_dict(), opt2.param_groups[0]["lr"], sched2.last_epoch,
              nnp.random.default_generator().bit_generator.state)
    with pytest.raises(nnp.CheckpointError):
        nnp.fit(model2, nnp.CrossEntropyLoss(), opt2, train, val, epochs=4, progress=False, scheduler=sched2,
                restore_best=True, resume=path)
    after = (model2.state_dict(), opt2.param_groups[0]["lr"], sched2.last_epoch,
             nnp.random.default_generator().bit_generator.state)
    for k, v in before[0].items():
        np.testing.assert_array_equal(after[0][k], v)
    assert before[1:] == after[1:] and opt2.state == {}


def test_deep_json_and_nan_weights_are_refused(tmp_path):
    model, opt = setup()
    train, val = data()
    path = tmp_path / "c.npz"
    nnp.fit(model, nnp.CrossEntropyLoss(), opt, train, val, epochs=1, progress=False, checkpoint=path)
    deep = tmp_path / "deep.npz"
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["__nnumpy_checkpoint__"] = np.array('{"format": "nnumpy-checkpoint", "version": 1, "x": '
                                               + "[" * 100000 + "]" * 100000 + "}")
    np.savez(deep, **arrays)
    with pytest.raises(nnp.CheckpointError, match="not valid JSON"):
        nnp.load_checkpoint(deep)
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["model/0.weight"] = np.full_like(arrays["model/0.weight"], np.nan)
    np.savez(path, **arrays)
    model2, opt2 = setup()
    with pytest.raises(nnp.CheckpointError, match="NaN or inf"):
        nnp.fit(model2, nnp.CrossEntropyLoss(), opt2, train, val, epochs=2, resume=path)


@pytest.mark.parametrize("kw, match", [
    (dict(optimizer="abc"), "optimizer must be an nnumpy optimizer"),
    (dict(scheduler="abc"), "scheduler must be an nnumpy learning-rate scheduler"),
    (dict(history="abc"), "history must be a History"),
    (dict(history={"epoch": [1]}), "differ in length"),
    (dict(extra=[1, 2]), "extra must be a dict"),
    (dict(best=[1, 2]), "best must be a state dict"),
    (dict(best={"x": "abc"}), "best must be a state dict"),
    (dict(epoch=-1), "epoch must be an integer >= 0"),
])
def test_save_checkpoint_checks_its_arguments(tmp_path, kw, match):
    model, _ = setup()
    with pytest.raises((TypeError, ValueError), match=match):
        nnp.save_checkpoint(tmp_path / "c.npz", model, **kw)
    assert list(tmp_path.iterdir()) == []


def test_save_checkpoint_leaves_a_read_only_file_alone(tmp_path):
    model, _ = setup()
    path = tmp_path / "c.npz"
    path.write_bytes(b"mine")
    path.chmod(0o444)
    with pytest.raises(PermissionError, match="read-only"):
        nnp.save_checkpoint(path, model)
    assert path.read_bytes() == b"mine"


def test_a_nan_monitor_is_an_error_not_a_silent_stop():
    train, val = data()
    model, opt = setup()
    with pytest.raises(ValueError, match="the monitor function is nan at epoch 1"):
        nnp.fit(model, nnp.CrossEntropyLoss(), opt, train, val, epochs=3, progress=False,
                monitor=lambda r: float("nan"), mode="min", patience=1)


def test_restore_rng_is_a_checked_flag(tmp_path):
    model, _ = setup()
    nnp.save_checkpoint(tmp_path / "c.npz", model)
    with pytest.raises(nnp.ArgumentTypeError, match="restore_rng"):
        nnp.load_checkpoint(tmp_path / "c.npz", restore_rng="no")
