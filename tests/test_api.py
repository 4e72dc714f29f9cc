"""The public surface: names, shapes, initialisation, summary, repr."""
import subprocess
import sys

import numpy as np
import pytest

import nnumpy as nnp


def test_practical_parameter_count():
    assert nnp.MLP([784, 100, 200, 50, 10]).num_parameters() == 109260


def test_import_does_not_import_torch_but_reaches_interop():
    code = "import sys, nnumpy; nnumpy.interop.compare_with_torch; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_state_dict_keys_match_torch_sequential():
    assert list(nnp.MLP([784, 100, 200, 50, 10]).state_dict()) == [
        "0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias", "6.weight", "6.bias"]
    # with dropout the torch stack is Linear, act, Dropout, Linear, ...
    assert list(nnp.MLP([4, 3, 3, 2], dropout=0.5).state_dict()) == [
        "0.weight", "0.bias", "3.weight", "3.bias", "6.weight", "6.bias"]
    m = nnp.MLP([4, 3, 2], bias=False)
    assert list(m.state_dict()) == ["0.weight", "2.weight"]
    assert m[0].weight.shape == (3, 4)


def test_linear_default_init_matches_torch_bounds():
    lin = nnp.Linear(400, 300, rng=0, dtype=np.float64)
    bound = 1 / np.sqrt(400)
    w, b = lin.weight.data, lin.bias.data
    assert w.shape == (300, 400) and b.shape == (300,)
    assert np.abs(w).max() <= bound and np.abs(b).max() <= bound
    # U(-a, a): mean 0, variance a^2 / 3 (120,000 draws: tight)
    assert abs(w.mean()) < 0.01 * bound
    assert w.var() == pytest.approx(bound ** 2 / 3, rel=0.02)


def test_same_seed_same_model_across_dtypes():
    a = nnp.MLP([5, 4, 3], rng=42)
    b = nnp.MLP([5, 4, 3], rng=42, dtype=np.float64)
    c = nnp.MLP([5, 4, 3], rng=43)
    for k, v in a.state_dict().items():
        np.testing.assert_array_equal(v, b.state_dict()[k].astype(np.float32))
    assert not np.array_equal(a[0].weight.data, c[0].weight.data)
    nnp.manual_seed(5)
    d = nnp.MLP([5, 4, 3])
    nnp.manual_seed(5)
    e = nnp.MLP([5, 4, 3])
    np.testing.assert_array_equal(d[0].weight.data, e[0].weight.data)


def test_mlp_argument_errors():
    with pytest.raises(ValueError, match="at least two"):
        nnp.MLP([784])
    with pytest.raises(ValueError, match="unknown activation 'mish'"):
        nnp.MLP([4, 3, 2], activation="mish")
    with pytest.raises(ValueError, match="2 hidden layer"):
        nnp.MLP([4, 3, 3, 2], activation=["relu"])
    with pytest.raises(ValueError, match="positive integer"):
        nnp.Linear(0, 3)
    with pytest.raises(ValueError, match="Dropout probability"):
        nnp.Dropout(1.5)


def test_summary_reports_params_and_saved_arrays():
    model = nnp.MLP([784, 100, 200, 50, 10], rng=0)
    s = nnp.summary(model, (784,))
    assert s.total_params == 109260
    assert [r["output_shape"] for r in s.rows] == [(-1, 100), (-1, 100), (-1, 200), (-1, 200),
                                                   (-1, 50), (-1, 50), (-1, 10)]
    assert s.rows[0]["saved"] == [("x", (784,), "float32", 784 * 4)]
    assert s.rows[1]["saved"] == [("mask", (100,), "bool", 100)]
    # Linear inputs (784+100+200+50)*4 bytes, ReLU masks 100+200+50 bytes
    assert s.saved_bytes_per_sample == (784 + 100 + 200 + 50) * 4 + 350
    assert "109,260" in str(s)
    with pytest.raises(RuntimeError):       # summary leaves no cache behind
        model.backward(np.ones((2, 10), np.float32))


def test_summary_does_not_consume_dropout_randomness():
    a, b = nnp.MLP([6, 5, 2], dropout=0.5, rng=0), nnp.MLP([6, 5, 2], dropout=0.5, rng=0)
    s = nnp.summary(a, (6,))
    assert [r["type"] for r in s.rows] == ["Linear", "ReLU", "Dropout", "Linear"]
    assert s.rows[2]["saved"] == [("mask", (5,), "float32", 20)]
    x = np.ones((3, 6), np.float32)
    np.testing.assert_array_equal(a(x), b(x))


def test_repr_reads_like_torch():
    r = repr(nnp.MLP([4, 3, 2], activation="sigmoid", dropout=0.1))
    assert r.splitlines() == ["MLP(", "  (0): Linear(in_features=4, out_features=3, bias=True)",
                              "  (1): Sigmoid()", "  (2): Dropout(p=0.1)",
                              "  (3): Linear(in_features=3, out_features=2, bias=True)", ")"]


def test_readme_style_training_step():
    rng = np.random.default_rng(0)
    model = nnp.MLP([784, 100, 10], rng=0)
    crit = nnp.CrossEntropyLoss()
    opt = nnp.optim.SGD(model.parameters(), lr=0.1)
    x, y = rng.random((64, 784), dtype=np.float32), rng.integers(0, 10, 64)
    losses = []
    for _ in range(5):
        opt.zero_grad()
        losses.append(crit(model(x), y))
        model.backward(crit.backward())
        opt.step()
    assert isinstance(losses[0], float) and losses[-1] < losses[0]
