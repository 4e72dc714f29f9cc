"""Custom modules that follow the protocol can be saved, loaded and checkpointed once registered."""
import pickle

import numpy as np
import pytest

import nnumpy as nnp
from nnumpy.serialization import _REGISTERED


class Residual(nnp.Module):
    """y = x + W2 relu(W1 x): a block a student writes, with its own backward."""

    def __init__(self, width, hidden=8, rng=None, dtype=None):
        super().__init__()
        self.width, self.hidden = width, hidden
        self.inner = nnp.Sequential(nnp.Linear(width, hidden, rng=rng, dtype=dtype), nnp.ReLU(),
                                    nnp.Linear(hidden, width, rng=rng, dtype=dtype))

    def forward(self, x):
        return x + self.inner(x)

    def backward(self, dy):
        return dy + self.inner.backward(dy)          # d(x + f(x)) = dy + f'(x)^T dy

    def get_config(self):
        return {"width": self.width, "hidden": self.hidden}


@pytest.fixture
def registered():
    nnp.register_module(Residual)
    yield
    _REGISTERED.pop("Residual", None)


def model():
    return nnp.Sequential(nnp.Linear(6, 4, rng=0), Residual(4, rng=1), nnp.Linear(4, 3, rng=2))


def test_unregistered_custom_modules_are_refused_with_advice(tmp_path):
    with pytest.raises(TypeError, match=r"register it with nnumpy.register_module\(Residual\)"):
        nnp.save(model(), tmp_path / "m.npz")


def test_save_and_load_a_registered_module(tmp_path, registered):
    m = model()
    nnp.save(m, tmp_path / "m.npz")
    back = nnp.load(tmp_path / "m.npz")
    assert isinstance(back[1], Residual) and back[1].hidden == 8
    x = np.random.default_rng(0).standard_normal((5, 6)).astype(np.float32)
    np.testing.assert_array_equal(back(x), m(x))
    _REGISTERED.pop("Residual")                       # another process that did not register it
    with pytest.raises(nnp.ModelFileError, match="register its class with nnumpy.register_module"):
        nnp.load(tmp_path / "m.npz")


def test_checkpoint_and_resume_a_registered_module(tmp_path, registered):
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((120, 6)).astype(np.float32), rng.integers(0, 3, 120)
    runs = {}
    for mode in ("straight", "resumed"):
        m = model()
        opt = nnp.optim.Adam(m.parameters(), lr=1e-2)
        kw = dict(epochs=4, batch_size=16, progress=False)
        if mode == "straight":
            nnp.fit(m, nnp.CrossEntropyLoss(), opt, (x, y), **kw)
        else:
            nnp.fit(m, nnp.CrossEntropyLoss(), opt, (x, y), **{**kw, "epochs": 2}, checkpoint=tmp_path / "c.npz")
            m, opt = model(), None
            opt = nnp.optim.Adam(m.parameters(), lr=1e-2)
            nnp.fit(m, nnp.CrossEntropyLoss(), opt, (x, y), **kw, resume=tmp_path / "c.npz")
        runs[mode] = m.state_dict()
    for k, v in runs["straight"].items():
        np.testing.assert_array_equal(runs["resumed"][k], v)
    assert isinstance(nnp.load_checkpoint(tmp_path / "c.npz", restore_rng=False).model[1], Residual)


def test_a_checkpoint_of_an_unregistered_module_needs_the_model(tmp_path):
    m = model()
    nnp.save_checkpoint(tmp_path / "c.npz", m)
    with pytest.raises(nnp.CheckpointError, match="pass it"):
        nnp.load_checkpoint(tmp_path / "c.npz")
    assert nnp.load_checkpoint(tmp_path / "c.npz", model()).epoch == 0


def test_bad_registrations(registered):
    with pytest.raises(ValueError, match="one of nnumpy's own modules"):
        nnp.register_module(Residual, name="Linear")
    with pytest.raises(TypeError, match="subclass of nnumpy.nn.Module"):
        nnp.register_module(dict)

    class Residual2(Residual):
        pass
    with pytest.raises(ValueError, match="taken by"):
        nnp.register_module(Residual2, name="Residual")
    assert nnp.register_module(Residual) is Residual          # the same class again: fine


def test_get_config_must_be_json(tmp_path, registered):
    m = model()
    m[1].get_config = lambda: {"width": np.arange(3)}
    with pytest.raises(TypeError, match="JSON-able"):
        nnp.save(m, tmp_path / "m.npz")


def test_model_file_error_pickles():
    e = pickle.loads(pickle.dumps(nnp.ModelFileError("m.npz: bad")))
    assert str(e) == "m.npz: bad"
