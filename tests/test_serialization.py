"""save/load and state dicts."""
import os
import zipfile

import numpy as np
import pytest

import nnumpy as nnp


@pytest.mark.parametrize("make", [
    lambda: nnp.MLP([784, 100, 200, 50, 10], rng=0),
    lambda: nnp.MLP([20, 30, 10], activation="sigmoid", dropout=0.25, bias=False, dtype=np.float64, rng=1),
    lambda: nnp.MLP([20, 30, 15, 10], activation=["tanh", "leaky_relu"], rng=2),
    lambda: nnp.Sequential(nnp.Flatten(), nnp.Linear(20, 8, rng=3), nnp.LeakyReLU(0.2), nnp.Dropout(0.1),
                           nnp.Sequential(nnp.Linear(8, 4, rng=4), nnp.Tanh()), nnp.Identity()),
])
def test_round_trip_is_bit_identical(make, tmp_path):
    model = make()
    nin = model[0].in_features if isinstance(model[0], nnp.Linear) else 20
    x = np.random.default_rng(0).standard_normal((16, nin)).astype(model.dtype)
    path = tmp_path / "model.npz"
    nnp.save(model, path)
    loaded = nnp.load(path)
    assert type(loaded) is type(model) and repr(loaded) == repr(model)
    assert loaded.dtype == model.dtype
    model.eval(), loaded.eval()
    assert np.array_equal(model(x), loaded(x))
    assert list(loaded.state_dict()) == list(model.state_dict())
    assert os.listdir(tmp_path) == ["model.npz"]          # no temporary left behind


def test_files_contain_no_pickles(tmp_path):
    nnp.save(nnp.MLP([4, 3, 2], rng=0), tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz", allow_pickle=False) as f:
        assert all(f[k].dtype != object for k in f.files)


def rewrite(src, dst, drop=None, add=None, replace=None):
    with np.load(src, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files if k != drop}
    arrays.update(add or {})
    arrays.update(replace or {})
    np.savez(dst, **arrays)


@pytest.fixture
def saved(tmp_path):
    path = tmp_path / "good.npz"
    nnp.save(nnp.MLP([6, 5, 3], rng=0), path)
    return path


def test_missing_entry_is_named(saved, tmp_path):
    rewrite(saved, tmp_path / "bad.npz", drop="2.bias")
    with pytest.raises(nnp.ModelFileError, match=r"bad\.npz.*missing key\(s\): 2\.bias"):
        nnp.load(tmp_path / "bad.npz")


def test_extra_entry_is_named(saved, tmp_path):
    rewrite(saved, tmp_path / "bad.npz", add={"4.weight": np.zeros((2, 3), np.float32)})
    with pytest.raises(nnp.ModelFileError, match=r"unexpected key\(s\): 4\.weight"):
        nnp.load(tmp_path / "bad.npz")


def test_misshaped_entry_is_named(saved, tmp_path):
    rewrite(saved, tmp_path / "bad.npz", replace={"0.weight": np.zeros((5, 7), np.float32)})
    with pytest.raises(nnp.ModelFileError, match=r"0\.weight: shape \(5, 7\) in the state dict, \(5, 6\)"):
        nnp.load(tmp_path / "bad.npz")


def test_corrupt_and_foreign_files(saved, tmp_path):
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(saved.read_bytes()[:200])
    with pytest.raises(nnp.ModelFileError, match="not a readable"):
        nnp.load(truncated)
    text = tmp_path / "text.npz"
    text.write_text("hello")
    with pytest.raises(nnp.ModelFileError, match="not a readable"):
        nnp.load(text)
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, a=np.zeros(3))
    with pytest.raises(nnp.ModelFileError, match="not written by nnumpy.save"):
        nnp.load(foreign)
    with pytest.raises(nnp.ModelFileError, match="no such model file"):
        nnp.load(tmp_path / "absent.npz")
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, __nnumpy__=np.array([{"evil": 1}], dtype=object))
    with pytest.raises(nnp.ModelFileError):
        nnp.load(pickled)
    assert zipfile.is_zipfile(saved)


def test_bad_metadata(saved, tmp_path):
    rewrite(saved, tmp_path / "v9.npz", replace={"__nnumpy__": np.array(
        '{"format": "nnumpy-model", "version": 9, "dtype": "float32", "architecture": {}}')})
    with pytest.raises(nnp.ModelFileError, match="version 9 is not supported"):
        nnp.load(tmp_path / "v9.npz")
    rewrite(saved, tmp_path / "junk.npz", replace={"__nnumpy__": np.array("{not json")})
    with pytest.raises(nnp.ModelFileError, match="invalid model description"):
        nnp.load(tmp_path / "junk.npz")


def test_failed_save_leaves_nothing(tmp_path):
    class Custom(nnp.Module):
        pass
    with pytest.raises(TypeError, match="register it with nnumpy.register_module"):
        nnp.save(nnp.Sequential(nnp.Linear(2, 2, rng=0), Custom()), tmp_path / "m.npz")
    assert os.listdir(tmp_path) == []


def test_load_state_dict_strict_and_lenient():
    model = nnp.MLP([4, 3, 2], rng=0)
    sd = model.state_dict()
    other = nnp.MLP([4, 3, 2], rng=1)
    other.load_state_dict(sd)
    for k, v in other.state_dict().items():
        np.testing.assert_array_equal(v, sd[k])
    partial = {k: v for k, v in sd.items() if k != "2.bias"}
    with pytest.raises(nnp.StateDictError, match=r"missing key\(s\): 2\.bias"):
        other.load_state_dict(partial)
    missing, unexpected = other.load_state_dict({**partial, "x": np.zeros(1)}, strict=False)
    assert missing == ["2.bias"] and unexpected == ["x"]
    before = other.state_dict()
    with pytest.raises(nnp.StateDictError, match="shape"):
        other.load_state_dict({**sd, "0.weight": np.zeros((4, 3))})
    for k, v in other.state_dict().items():           # nothing written on failure
        np.testing.assert_array_equal(v, before[k])


def test_state_dict_returns_copies():
    model = nnp.MLP([4, 3, 2], rng=0)
    sd = model.state_dict()
    sd["0.weight"][...] = 99
    assert not (model[0].weight.data == 99).any()
