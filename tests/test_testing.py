"""nnumpy.testing: the checks the tutorials' check cells use pass right answers
and fail wrong ones with a message that says what is wrong."""
import pickle

import numpy as np
import pytest

from nnumpy.testing import assert_close, assert_gradient, assert_returns, numerical_gradient


@pytest.fixture
def linear():
    rng = np.random.default_rng(7)
    x, W, dy = rng.standard_normal((5, 4)), rng.standard_normal((3, 4)), rng.standard_normal((5, 3))
    return x, W, dy, dy.T @ x          # dW = dy.T @ x   # (3, 5) @ (5, 4) -> (3, 4)


def message(actual, expected, name="dW", **kw):
    with pytest.raises(AssertionError) as info:
        assert_close(actual, expected, name, **kw)
    return str(info.value)


def test_equal_arrays_pass(linear):
    *_, dW = linear
    assert assert_close(dW, dW.copy(), "dW") is None
    assert_close(dW * (1 + 1e-9), dW, "dW")                      # rounding-level differences pass
    assert_close(2.5, 2.5, "loss")
    assert_close([1, 2, 3], np.array([1.0, 2.0, 3.0]), "counts")
    assert_close(np.zeros(3), np.zeros(3), "zeros")


def test_a_wrong_entry_is_named_with_its_index_and_values(linear):
    *_, dW = linear
    bad = dW.copy()
    bad[2, 1] += 0.5
    text = message(bad, dW)
    assert "dW is wrong: worst entry dW[2, 1]" in text
    assert f"expected {dW[2, 1]:.6g}" in text and "1 of 12 entries are off" in text


def test_a_transpose_is_called_a_transpose(linear):
    x, W, dy, dW = linear
    assert "the transpose" in message(x.T @ dy, dW)
    assert "has shape (12,), expected (3, 4)" in message(dW.ravel(), dW)


@pytest.mark.parametrize("wrong, hint", [(lambda d: -d, "opposite sign"),
                                         (lambda d: d / 5, "0.2 times the expected"),
                                         (lambda d: 0 * d, "all zeros")])
def test_classic_mistakes_get_a_hint(linear, wrong, hint):
    *_, dW = linear
    assert hint in message(wrong(dW), dW)


def test_no_hint_for_an_unrelated_error(linear):
    *_, dW = linear
    text = message(dW + np.random.default_rng(0).standard_normal(dW.shape), dW)
    assert "times the expected" not in text and "opposite sign" not in text


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_and_inf_fail_naming_the_entry(linear, bad):
    *_, dW = linear
    broken = dW.copy()
    broken[1, 3] = bad
    text = message(broken, dW)
    assert "1 non-finite entry" in text and "dW[1, 3]" in text


def test_nan_never_passes_whatever_the_tolerance():
    for tol in (1e-7, 0.5, 0.999):
        with pytest.raises(AssertionError, match="non-finite"):
            assert_close(np.array([np.nan]), np.array([1.0]), "x", tolerance=tol)


@pytest.mark.parametrize("value, says", [(None, "is None"), ("text", "array of numbers, got a str"),
                                         ({"a": 1}, "got a dict"), ([[1, 2], [3]], "array of numbers"),
                                         (np.array([1 + 2j, 0j]), "real")])
def test_not_an_array_of_numbers(value, says):
    with pytest.raises(AssertionError, match=says):
        assert_close(value, np.ones(2), "dx")


def test_a_phrase_as_name_gives_an_index():
    text = message(np.array([1.0, 5.0]), np.array([1.0, 2.0]), name="x @ W.T + b")
    assert "x @ W.T + b is wrong: worst entry [1] = 5" in text


def test_bad_arguments_are_errors_not_failures(linear):
    *_, dW = linear
    with pytest.raises(ValueError, match="expected value of dW has a NaN"):
        assert_close(dW, np.full_like(dW, np.nan), "dW")
    with pytest.raises(TypeError, match="expected value of dW"):
        assert_close(dW, None, "dW")
    with pytest.raises(ValueError, match="tolerance"):
        assert_close(dW, dW, "dW", tolerance=1.0)
    with pytest.raises(ValueError, match="tolerance"):
        assert_close(dW, dW, "dW", tolerance=float("nan"))
    with pytest.raises(TypeError, match="name"):
        assert_close(dW, dW, 3)


def test_numerical_gradient_of_a_linear_layer(linear):
    x, W, dy, dW = linear
    g = numerical_gradient(lambda W: np.sum((x @ W.T) * dy), W)
    np.testing.assert_allclose(g, dW, rtol=1e-8, atol=1e-9)
    assert W.flags.writeable and g.shape == W.shape


def test_numerical_gradient_leaves_x_alone(linear):
    x, W, dy, _ = linear
    before = W.copy()
    numerical_gradient(lambda W: np.sum(np.sin(W)), W)
    np.testing.assert_array_equal(W, before)


def test_numerical_gradient_refuses_what_it_cannot_do():
    with pytest.raises(TypeError, match="float64"):
        numerical_gradient(lambda x: x.sum(), np.ones(3, np.float32))
    with pytest.raises(TypeError, match="single number"):
        numerical_gradient(lambda x: x * 2, np.ones(3))
    with pytest.raises(ValueError, match="must be finite"):
        with np.errstate(divide="ignore"):
            numerical_gradient(lambda x: np.log(x).sum(), np.zeros(2))
    with pytest.raises(TypeError, match="function"):
        numerical_gradient("f", np.ones(2))
    with pytest.raises(ValueError, match="eps"):
        numerical_gradient(lambda x: x.sum(), np.ones(2), eps=0)


def test_assert_gradient_passes_a_right_gradient_and_fails_a_wrong_one(linear):
    x, W, dy, dW = linear
    f = lambda W: np.sum((x @ W.T) * dy)            # noqa: E731
    assert_gradient(f, W, dW, "dW")
    with pytest.raises(AssertionError, match=r"dW is wrong.*central differences"):
        assert_gradient(f, W, dW.T.reshape(dW.shape), "dW")
    with pytest.raises(AssertionError, match="2 times the expected"):
        assert_gradient(f, W, 2 * dW, "dW")


def test_failures_survive_pickling(linear):
    *_, dW = linear
    with pytest.raises(AssertionError) as info:
        assert_close(-dW, dW, "dW")
    again = pickle.loads(pickle.dumps(info.value))
    assert str(again) == str(info.value)


def test_hints_only_when_they_explain_every_entry():
    text = message(np.array([-1.0, 0.0005]), np.array([1.0, 0.0005]), name="v")
    assert "opposite sign" not in text and "1 of 2 entries are off" in text
    M = np.arange(6.0).reshape(2, 3) + 1
    assert "(the transposed shape" in message(M.reshape(3, 2), M, name="M")      # a reshape is no transpose
    S = np.array([[1.0, 2.0], [3.0, 4.0]])
    assert "transpose of the expected" in message(S.T, S, name="S")           # a square transpose is named


def test_values_that_differ_print_differently():
    text = message(np.array([1.0 + 1e-6]), np.array([1.0]), name="w")
    assert "w[0] = 1.000001, expected 1 " in text


def test_no_numpy_warning_escapes(linear):
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for a, b in ((np.array([0.5, 0.1]), np.zeros(2)), (np.array([1e308]), np.array([-1e308])),
                     (np.array([1e-300, 0.0]), np.array([0.0, 1e-300]))):
            with pytest.raises(AssertionError):
                assert_close(a, b, "v")


def test_an_empty_name_is_refused(linear):
    *_, dW = linear
    with pytest.raises(ValueError, match="name"):
        assert_close(dW, dW, "  ")


def test_numerical_gradient_catches_what_would_make_it_wrong():
    def centring(x):
        x -= x.mean()                                      # changes its argument
        return float((x ** 2).sum())
    with pytest.raises(ValueError, match="changed its argument in place"):
        numerical_gradient(centring, np.array([1.0, 2.0, 4.0]))
    with pytest.raises(ValueError, match="too small for x"):
        numerical_gradient(lambda x: x.sum(), np.ones(3), eps=1e-20)
    with pytest.raises(TypeError, match="float32"):
        numerical_gradient(lambda x: (x.astype(np.float32) ** 3).sum(), np.ones(3))


def test_a_single_number_gets_no_factor_hint():
    text = message(1.24316, 1.2486, name="loss")
    assert "times the expected" not in text and "loss is wrong: worst entry loss = 1.24316, expected 1.2486" in text


def test_assert_returns_names_a_forgotten_return():
    assert assert_returns((1, 2), ("y", "cache"), "f") == (1, 2)
    with pytest.raises(AssertionError, match=r"f returned None; it should return \(y, cache\): did it forget"):
        assert_returns(None, ("y", "cache"), "f")
    with pytest.raises(AssertionError, match="returned a tuple of 3; it should return the 2 values"):
        assert_returns((1, 2, 3), ("y", "cache"), "f")
    with pytest.raises(AssertionError, match="returned a ndarray"):
        assert_returns(np.ones(2), ("y", "cache"), "f")
