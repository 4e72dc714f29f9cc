"""The error reports of gradcheck and compare_with_torch: non-finite entries
fail, the verdict is a Python bool, checking nothing is an error, and each
row names its worst entry with both values."""
import json
import math

import numpy as np
import pytest

import nnumpy as nnp
from conftest import away_from_zero
from nnumpy.interop import compare_with_torch
from nnumpy.report import ErrorReport, tensor_errors

TOL = 1e-6


class SpoiledLinear(nnp.Linear):
    """A Linear whose backward then changes one gradient entry:
    ``grad[index] = value`` (or ``+= value`` with ``add=True``), where the
    gradient is ``"input"`` (the returned dx), ``"weight"`` or ``"bias"``."""

    def __init__(self, *args, spoil, add=False, **kw):
        super().__init__(*args, **kw)
        self.spoil, self.add = spoil, add

    def backward(self, dy, input_grad=True):
        dx = super().backward(dy, input_grad)
        where, index, value = self.spoil
        g = dx if where == "input" else getattr(self, where).grad
        g[index] = g[index] + value if self.add else value
        return dx


class NoInputGrad(nnp.Linear):
    """A Linear whose backward computes the parameter gradients but never dx."""

    def backward(self, dy, input_grad=True):
        super().backward(dy, input_grad=False)


def spoiled(spoil, add=False, sizes=(4, 5)):
    return SpoiledLinear(*sizes, spoil=spoil, add=add, rng=0, dtype=np.float64)


def row(report, name):
    (r,) = [r for r in report.rows if r["name"] == name]
    return r


def printed_row(report, name):
    (line,) = [ln for ln in str(report).splitlines()[1:] if ln.startswith(name + " ")]
    return line


def assert_fails_at(report, name, index, bad_side):
    """The report fails because row ``name`` has a non-finite ``bad_side`` at ``index``."""
    assert report.ok is False and bool(report) is False
    assert not report.max_rel_error <= TOL and not report.max_abs_error <= TOL
    r = row(report, name)
    assert r["ok"] is False and r["finite"] is False and r["index"] == index
    assert not math.isfinite(r[bad_side])
    assert all(x["ok"] for x in report.rows if x is not r)
    text = str(report)
    assert text.endswith("FAILED") and "PASSED" not in text
    assert str(index) in printed_row(report, name) and "NO" in printed_row(report, name)
    assert f"worst: {name}, non-finite {bad_side} at {index}" in text.splitlines()[-1]


# -- non-finite entries -------------------------------------------------------------

@pytest.mark.parametrize("k", [0, 2, 4], ids=["first", "middle", "last"])
def test_nan_in_a_bias_gradient_fails(k, rng):
    report = nnp.gradcheck(spoiled(("bias", k, np.nan)), away_from_zero((3, 4), rng))
    assert_fails_at(report, "bias", (k,), "analytic")
    assert math.isfinite(row(report, "bias")["numeric"])
    assert row(report, "bias")["note"] == "non-finite analytic"        # the backward is at fault


@pytest.mark.parametrize("value", [np.inf, -np.inf], ids=["+inf", "-inf"])
def test_inf_in_a_weight_gradient_fails(value, rng):
    report = nnp.gradcheck(spoiled(("weight", (2, 3), value)), away_from_zero((3, 4), rng))
    assert_fails_at(report, "weight", (2, 3), "analytic")
    assert row(report, "weight")["analytic"] == value


def test_nan_in_the_input_gradient_fails(rng):
    report = nnp.gradcheck(spoiled(("input", (1, 2), np.nan)), away_from_zero((3, 4), rng))
    assert_fails_at(report, "input", (1, 2), "analytic")


def test_nan_on_the_numeric_side_fails(rng):
    class NaNWhenWeightsMove(nnp.Linear):
        def forward(self, x):
            y = super().forward(x)
            return y if np.array_equal(self.weight.data, self.w0) else np.full_like(y, np.nan)

    lin = NaNWhenWeightsMove(4, 5, rng=0, dtype=np.float64)
    lin.w0 = lin.weight.data.copy()
    report = nnp.gradcheck(lin, away_from_zero((3, 4), rng))
    assert_fails_at(report, "weight", (0, 0), "numeric")          # the first non-finite entry
    assert math.isfinite(row(report, "weight")["analytic"])
    assert row(report, "weight")["note"] == "non-finite numeric"        # the forward, not backward


def test_the_same_inf_on_both_sides_fails():
    e = tensor_errors([1.0, np.inf, 2.0], [1.0, np.inf, 2.0])
    assert e["finite"] is False and e["index"] == (1,) and e["rel_err"] == math.inf
    report = ErrorReport("t", [ErrorReport.row("x", [1.0, np.inf], [1.0, np.inf])], TOL)
    assert not report and row(report, "x")["note"] == "non-finite a and b"


def test_a_hand_built_row_with_nan_error_fails():
    report = ErrorReport("t", [{"name": "x", "shape": (2,), "abs_err": 1e-9, "rel_err": 1e-9, "index": (0,),
                                "a": 1.0, "b": 1.0},
                               {"name": "y", "shape": (2,), "abs_err": np.nan, "rel_err": np.nan, "index": (1,),
                                "a": 1.0, "b": 1.0}], TOL)
    assert report.ok is False and not report.max_rel_error <= TOL
    assert report.worst_row["name"] == "y"


# -- the verdict ------------------------------------------------------------------

def test_ok_and_bool_are_python_bools(rng):
    x = away_from_zero((3, 4), rng)
    good = nnp.gradcheck(nnp.Linear(4, 5, rng=0, dtype=np.float64), x)
    bad = nnp.gradcheck(spoiled(("weight", (0, 0), 1.0), add=True), x)
    assert good.ok is True and bool(good) is True
    assert bad.ok is False and bool(bad) is False
    assert all(type(r["ok"]) is bool for r in good.rows + bad.rows)


# -- checking nothing, bad arguments ------------------------------------------------

def test_a_batch_of_zero_samples_is_an_error():
    with pytest.raises(ValueError, match=r"input x has shape \(0, 4\) and no entries"):
        nnp.gradcheck(nnp.Linear(4, 5, rng=0), np.zeros((0, 4)))
    with pytest.raises(ValueError, match="no entries"):
        nnp.gradcheck(nnp.Linear(4, 5, rng=0), np.zeros((0, 4)), check_input=False)


@pytest.mark.parametrize("max_checks", [0, -3, 2.5, 10.0, "10", True])
def test_max_checks_must_be_a_positive_integer(max_checks, rng):
    with pytest.raises(ValueError, match="max_checks must be a positive integer"):
        nnp.gradcheck(nnp.Linear(4, 5, rng=0), rng.standard_normal((3, 4)), max_checks=max_checks)


@pytest.mark.parametrize("name,value", [(name, value) for name in ("eps", "tolerance")
                                        for value in (0, -1e-5, np.nan, np.inf, "1e-5", None)])
def test_eps_and_tolerance_must_be_positive_and_finite(name, value, rng):
    with pytest.raises(ValueError, match=f"{name} must be a positive finite number"):
        nnp.gradcheck(nnp.Linear(4, 5, rng=0), rng.standard_normal((3, 4)), **{name: value})


def test_nothing_to_check_is_an_error(rng):
    with pytest.raises(ValueError, match="Tanh has no parameters and check_input=False"):
        nnp.gradcheck(nnp.Tanh(), rng.standard_normal((3, 4)), check_input=False)

    class WithEmptyParameter(nnp.Identity):
        def __init__(self):
            super().__init__()
            self.unused = nnp.Parameter(np.zeros((0, 3)))
    with pytest.raises(ValueError, match=r"parameter 'unused' has shape \(0, 3\) and no entries"):
        nnp.gradcheck(WithEmptyParameter(), rng.standard_normal((3, 4)))
    with pytest.raises(ValueError, match="no entries"):
        tensor_errors(np.zeros((0, 2)), np.zeros((0, 2)))
    with pytest.raises(ValueError, match="no rows"):
        ErrorReport("t", [], TOL)
    with pytest.raises(ValueError, match="tolerance"):
        ErrorReport("t", [ErrorReport.row("x", [1.0], [1.0])], 0.0)


# -- the worst entry ---------------------------------------------------------------

def test_the_worst_entry_is_located_and_printed(rng):
    x, t = away_from_zero((3, 4), rng), rng.standard_normal((3, 5))
    bug = np.full((5, 4), 1e-4)
    bug[2, 3] = 1e-3                                 # the worst error, at a known place
    lin = spoiled(("weight", slice(None), bug), add=True)
    report = nnp.gradcheck(lin, x, target=t, loss=nnp.MSELoss())

    ref, crit = nnp.Linear(4, 5, rng=0, dtype=np.float64), nnp.MSELoss()
    crit(ref(x), t)
    ref.backward(crit.backward())
    true = ref.weight.grad[2, 3]

    w = row(report, "weight")
    assert w["index"] == (2, 3) and w["ok"] is False and w["note"] is None
    assert w["analytic"] == pytest.approx(true + 1e-3, rel=1e-12)
    assert w["numeric"] == pytest.approx(true, rel=1e-7, abs=1e-9)
    assert w["abs_err"] == pytest.approx(1e-3, rel=1e-6)
    scale = max(np.abs(ref.weight.grad + bug).max(), np.abs(ref.weight.grad).max())
    assert w["rel_err"] == pytest.approx(1e-3 / scale, rel=1e-6)
    line = printed_row(report, "weight")
    assert "(2, 3)" in line and f"{w['analytic']:.6e}" in line and f"{w['numeric']:.6e}" in line
    assert report.worst_row is w
    assert "in weight at (2, 3); 1 of 3 tensors fail (tolerance 1e-06): FAILED" in str(report)
    # the tolerance given is the one the verdict uses
    loose = nnp.gradcheck(lin, x, target=t, loss=nnp.MSELoss(), tolerance=2 * w["rel_err"])
    assert loose.ok is True and loose.tolerance == 2 * w["rel_err"]
    assert str(loose).endswith(f"in weight at (2, 3) (tolerance {2 * w['rel_err']:g}): PASSED")


def test_a_sampled_worst_entry_is_indexed_in_the_whole_tensor(rng):
    lin = spoiled(("weight", slice(None), 1e-3 * np.arange(1, 601).reshape(20, 30)), add=True, sizes=(30, 20))
    report = nnp.gradcheck(lin, rng.standard_normal((2, 30)), max_checks=10)
    w = row(report, "weight")
    assert w["checked"] == 10 and len(w["index"]) == 2
    flat = np.ravel_multi_index(w["index"], (20, 30))
    # the error at an entry encodes its position: the values belong to this index
    assert w["analytic"] - w["numeric"] == pytest.approx(1e-3 * (1 + flat), rel=1e-6)
    assert flat >= 10                                # a position in the tensor, not in the sample


def test_the_table_is_aligned_and_the_rows_are_plain(rng):
    for report in (nnp.gradcheck(nnp.MLP([4, 3, 2], dtype=np.float64, rng=0), away_from_zero((3, 4), rng)),
                   nnp.gradcheck(spoiled(("bias", 1, np.nan)), away_from_zero((3, 4), rng)),
                   nnp.gradcheck(nnp.Sequential(NoInputGrad(4, 2, rng=0, dtype=np.float64)),
                                 rng.standard_normal((3, 4)))):
        lines = str(report).splitlines()
        assert repr(report) == str(report) and len(lines) == len(report.rows) + 3
        col = lines[1].index(" ok ") + 1
        for r, line in zip(report.rows, lines[2:-1]):
            assert line.startswith(r["name"]) and line[col:col + 3] == ("yes" if r["ok"] else "NO ")
        rows = json.loads(json.dumps(report.rows))
        assert [r["name"] for r in rows] == [r["name"] for r in report.rows]
        for r in report.rows:
            for v in r.values():
                assert v is None or type(v) in (str, bool, int, float, tuple), (r, v)
            assert all(type(i) is int for i in r["shape"] + (r["index"] or ()))


# -- input gradients: input_grad=False and missing ------------------------------------

def test_gradcheck_of_an_input_grad_false_model_checks_dx(rng):
    model = nnp.MLP([4, 3, 2], activation="tanh", dtype=np.float64, rng=0, input_grad=False)
    report = nnp.gradcheck(model, rng.standard_normal((3, 4)))
    assert report.ok and row(report, "input")["finite"] and model.input_grad is False


def test_gradcheck_of_a_missing_input_gradient_fails_with_a_reason(rng):
    report = nnp.gradcheck(nnp.Sequential(NoInputGrad(4, 2, rng=0, dtype=np.float64)), rng.standard_normal((3, 4)))
    r = row(report, "input")
    assert report.ok is False and r["ok"] is False and "None" in r["note"] and r["index"] is None
    assert "nan" not in printed_row(report, "input")
    assert all(x["ok"] for x in report.rows if x is not r)


# -- compare_with_torch --------------------------------------------------------------

def xy(rng, n=4, d=6, c=3):
    return rng.standard_normal((n, d)), rng.integers(0, c, n)


def test_torch_comparison_fails_on_a_nan_gradient(torch, rng):
    from nnumpy.interop import compare_with_torch
    model = nnp.Sequential(SpoiledLinear(6, 3, spoil=("bias", 1, np.nan), rng=0))
    report = compare_with_torch(model, *xy(rng))
    assert_fails_at(report, "0.bias.grad", (1,), "nnumpy")
    assert math.isfinite(row(report, "0.bias.grad")["torch"])


def test_torch_comparison_locates_the_worst_entry(torch, rng):
    from nnumpy.interop import compare_with_torch
    model = nnp.Sequential(SpoiledLinear(6, 3, spoil=("bias", 1, 0.5), add=True, rng=0))
    report = compare_with_torch(model, *xy(rng), tolerance=1e-9)
    b = row(report, "0.bias.grad")
    assert b["index"] == (1,) and b["nnumpy"] - b["torch"] == pytest.approx(0.5, rel=1e-12)
    assert f"{b['nnumpy']:.6e}" in printed_row(report, "0.bias.grad")
    assert report.tolerance == 1e-9 and not report and report.worst_row is b


def test_torch_comparison_of_an_input_grad_false_model_checks_dx(torch, rng):
    from nnumpy.interop import compare_with_torch
    model = nnp.MLP([6, 5, 3], rng=0, input_grad=False)
    report = compare_with_torch(model, *xy(rng))
    r = row(report, "d loss/d x")
    assert report.ok is True and r["ok"] and r["finite"] and r["shape"] == (4, 6)


def test_torch_comparison_of_a_missing_input_gradient_fails_with_a_reason(torch, rng):
    from nnumpy.interop import compare_with_torch
    report = compare_with_torch(nnp.Sequential(NoInputGrad(6, 3, rng=0)), *xy(rng))
    r = row(report, "d loss/d x")
    assert report.ok is False and r["ok"] is False and "None" in r["note"]
    assert "nan" not in printed_row(report, "d loss/d x")
    assert all(x["ok"] for x in report.rows if x is not r)


def test_torch_comparison_of_nothing_is_an_error(torch, rng):
    from nnumpy.interop import compare_with_torch
    with pytest.raises(ValueError, match=r"x has shape \(0, 6\)"):
        compare_with_torch(nnp.MLP([6, 3], rng=0), np.zeros((0, 6)), np.zeros(0, np.int64))
    for tol in (0, -1e-6, np.nan, np.inf):
        with pytest.raises(ValueError, match="tolerance must be a positive finite number"):
            compare_with_torch(nnp.MLP([6, 3], rng=0), *xy(rng), tolerance=tol)


# -- backward passes that break the protocol in ways a conversion would hide -----------------------------
class WritesIntoDy(nnp.Linear):
    """A Linear whose backward scales its upstream gradient in place first
    (so it returns 2x the right gradients, and corrupts the caller's dy)."""

    def backward(self, dy, input_grad=True):
        dy *= 2
        return super().backward(dy, input_grad)


def test_a_backward_that_writes_into_dy_fails(rng):
    x = away_from_zero((4, 3), rng)
    report = nnp.gradcheck(WritesIntoDy(3, 2, rng=0, dtype=np.float64), x)
    assert not report.ok and "wrote into its upstream gradient" in str(report)
    assert all(not r["ok"] for r in report.rows if r["name"] in ("input", "weight", "bias"))


class ReturnsAs(nnp.Linear):
    """A Linear whose backward returns the right dx, converted by ``convert``."""

    def __init__(self, *args, convert, **kw):
        super().__init__(*args, **kw)
        self.convert = convert

    def backward(self, dy, input_grad=True):
        return self.convert(super().backward(dy, input_grad))


@pytest.mark.parametrize("convert,words", [
    (lambda g: g.tolist(), "list"),
    (lambda g: g.astype(np.float32), "dtype float32"),
    (lambda g: g + 0j, "dtype complex128"),
    (lambda g: g.astype(object), "dtype object"),
    (lambda g: np.ma.masked_array(g, mask=True), "MaskedArray"),
    (lambda g: np.rint(g * 0).astype(np.int64), "dtype int64"),
    (lambda g: "abc", "str"),
    (lambda g: (g,), "tuple"),
], ids=["list", "float32", "complex", "object", "masked", "int", "str", "tuple"])
def test_an_input_gradient_of_the_wrong_kind_fails(convert, words, rng):
    report = nnp.gradcheck(ReturnsAs(3, 2, rng=0, dtype=np.float64, convert=convert), away_from_zero((4, 3), rng))
    row = report.rows[0]
    assert row["name"] == "input" and not row["ok"] and words in row["note"] and not report.ok


@pytest.mark.parametrize("value", [[0.0, 0.0], None, 0.0, np.zeros(2, np.float32)], ids=["list", "None", "float", "f32"])
def test_a_parameter_gradient_of_the_wrong_kind_is_refused_where_it_is_assigned(value, rng):
    class Replaces(nnp.Linear):
        def backward(self, dy, input_grad=True):
            dx = super().backward(dy, input_grad)
            self.bias.grad = value                   # Parameter.grad refuses it (tests/test_parameter_checks.py)
            return dx
    with pytest.raises(TypeError, match=r"Parameter\.grad"):
        nnp.gradcheck(Replaces(3, 2, rng=0, dtype=np.float64), away_from_zero((4, 3), rng))


@pytest.mark.parametrize("tolerance", [1.0, 2.0, 1e300])
def test_a_tolerance_that_passes_anything_is_refused(tolerance, rng):
    with pytest.raises(ValueError, match="tolerance must be below 1"):
        nnp.gradcheck(nnp.Linear(3, 2, rng=0), rng.standard_normal((2, 3)), tolerance=tolerance)


@pytest.mark.parametrize("loss", [nnp.MSELoss("none"), nnp.CrossEntropyLoss("none")], ids=["mse", "ce"])
def test_losses_without_reduction_are_checked_as_the_sum_of_their_terms(loss, rng):
    x = away_from_zero((5, 3), rng)
    target = rng.standard_normal((5, 3)) if isinstance(loss, nnp.MSELoss) else rng.integers(0, 3, 5)
    assert nnp.gradcheck(loss, x, target=target).ok
    assert nnp.gradcheck(nnp.Linear(3, 3, rng=0, dtype=np.float64), x, target=target, loss=loss).ok


def test_nested_and_empty_containers(rng):
    inner = nnp.Sequential(nnp.Tanh(), nnp.Linear(4, 2, rng=1, dtype=np.float64), input_grad=False)
    model = nnp.Sequential(nnp.Linear(3, 4, rng=0, dtype=np.float64), inner)
    for backend in ("numpy", "numba"):
        with nnp.backend.use(backend):
            assert nnp.gradcheck(model, rng.standard_normal((5, 3))).ok
            assert nnp.gradcheck(nnp.Sequential(nnp.Sequential(), nnp.Tanh()), rng.standard_normal((2, 3))).ok


def test_torch_comparison_of_a_backward_that_writes_into_dy_fails(torch, rng):
    report = compare_with_torch(nnp.Sequential(WritesIntoDy(3, 2, rng=0)), rng.standard_normal((4, 3)),
                                rng.integers(0, 2, 4))
    assert not report.ok and "wrote into its upstream gradient" in str(report)
    assert next(r for r in report.rows if r["name"] == "d loss/d logits")["ok"]      # the loss is not to blame


@pytest.mark.parametrize("dtype", [np.int8, np.uint16, np.int32, np.uint8])
def test_torch_comparison_takes_any_integer_labels(torch, dtype, rng):
    model = nnp.MLP([3, 4, 2], rng=0)
    assert compare_with_torch(model, rng.standard_normal((4, 3)), rng.integers(0, 2, 4).astype(dtype)).ok
    with pytest.raises(TypeError, match="dtype bool"):
        compare_with_torch(model, rng.standard_normal((4, 3)), np.array([True, False, True, False]))


def test_a_report_is_strict_json(rng):
    report = nnp.gradcheck(SpoiledLinear(3, 2, rng=0, dtype=np.float64, spoil=("bias", 0, np.inf)),
                           away_from_zero((4, 3), rng))
    d = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert d["ok"] is False and d["worst"] == "bias"
    bias = next(r for r in d["rows"] if r["name"] == "bias")
    assert bias["rel_err"] == "inf" and bias["analytic"] == "inf" and bias["index"] == [0]
