"""Error reports: how far one set of gradients is from a trusted reference.

One row per tensor compares the values under test (``a``: the analytic
gradient, or nnumpy's) with a reference (``b``: the finite differences, or
PyTorch's) by :func:`tensor_errors`; :class:`ErrorReport` holds the rows, a
tolerance on the relative error and the verdict.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

__all__ = ["ErrorReport", "tensor_errors", "check_positive_finite", "check_tolerance"]


def check_positive_finite(name, value):
    """``value`` as a float if it is a real number, finite and > 0; else a
    ValueError naming ``name`` (eps, tolerance: a zero or NaN there would make
    every check meaningless or vacuous)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    value = float(value)
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return value


def check_tolerance(value):
    """A tolerance on the relative error: finite, > 0 and < 1 (the normwise
    relative error of two arrays is at most 2, and a gradient that is all
    zeros scores exactly 1: a tolerance of 1 or more passes anything)."""
    value = check_positive_finite("tolerance", value)
    if value >= 1:
        raise ValueError(f"tolerance must be below 1, got {value!r}: a relative error of 1 is what a gradient of "
                         f"zeros scores, so such a check would pass a backward that computes nothing")
    return value


def tensor_errors(a, b, positions=None, shape=None):
    """Compare ``a`` (under test) with ``b`` (the reference), entry by entry.

    a, b: arrays of one shape, at least one entry (comparing nothing is a
    ValueError: it would pass whatever the gradients are).  positions, shape:
    when a and b hold only some entries of a tensor (gradcheck's
    ``max_checks``), their flat (C-order) positions in that tensor and its
    shape, so the worst entry is located in the tensor itself.

    The metric, over the compared entries i::

        abs_err = max_i |a_i - b_i|
        rel_err = abs_err / max(max_i |a_i|, max_i |b_i|)     (0 when a = b = 0)

    The relative error is normwise: the worst disagreement measured against
    the tensor's largest entry.  A gradient check needs this.  Central
    differences have an absolute error of about eps² |f'''| + 1e-16 |f| / eps
    for every entry, whatever its size, so dividing entry by entry would flag
    entries that are 0 or tiny (dead ReLUs, a bias hardly used) on rounding
    noise alone.  Here they are judged on the scale of the rest.  A real bug
    (a wrong sign, a missing term, a wrong factor) typically shows up at 1e-3
    or more, far above the ~1e-8 of a correct float64 backward pass.

    Non-finite entries are checked first, with ``np.isfinite``: if any entry
    of a or b is NaN or ±inf (even the same inf on both sides), abs_err and
    rel_err are +inf, so the row fails any tolerance and ``rel_err <= tol`` is
    False.  The worst entry is then the first non-finite one.  Otherwise it
    is the first entry with the largest |a_i - b_i|.

    Returns a dict of plain Python values: ``abs_err``, ``rel_err``,
    ``index`` (the worst entry's index tuple in the tensor's own shape), ``a``
    and ``b`` (the two values there), ``finite`` (every entry finite).
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"cannot compare arrays of shapes {a.shape} and {b.shape}")
    if a.size == 0:
        raise ValueError(f"nothing to compare: the arrays (shape {a.shape}) have no entries, "
                         f"and a check of zero entries would pass whatever the gradients are")
    if positions is None:
        positions, shape = np.arange(a.size), a.shape
    else:
        positions = np.asarray(positions).reshape(-1)
        if positions.size != a.size or shape is None:
            raise ValueError("tensor_errors: positions needs one flat position per entry, and shape")
    a, b = a.reshape(-1), b.reshape(-1)
    finite = np.isfinite(a) & np.isfinite(b)
    if not finite.all():
        k = int(np.flatnonzero(~finite)[0])
        abs_err = rel_err = math.inf
    else:
        with np.errstate(over="ignore"):            # |a - b| may overflow to inf: it then fails
            diff = np.abs(a - b)
        k = int(np.argmax(diff))
        abs_err = float(diff[k])
        scale = float(np.maximum(np.abs(a).max(), np.abs(b).max()))
        rel_err = abs_err / scale if scale > 0 else 0.0
    index = tuple(int(i) for i in np.unravel_index(int(positions[k]), tuple(shape)))
    return {"abs_err": abs_err, "rel_err": rel_err, "index": index,
            "a": float(a[k]), "b": float(b[k]), "finite": bool(finite.all())}


def _plain(v):
    """NumPy scalars and tuples of them -> plain Python values (JSON-friendly rows)."""
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, (tuple, list)):
        return tuple(_plain(x) for x in v)
    return v


def _fmt_value(v, width):
    return f"{'-':>{width}}" if v is None else f"{v:>{width}.6e}"


class ErrorReport:
    """A table with one row per tensor and a verdict against ``tolerance`` on
    the relative error (see :func:`tensor_errors` for the metric).

    Each row is a dict of plain Python values: ``name``, ``shape``, ``abs_err``,
    ``rel_err``, ``index`` (the worst entry), the two values there under the
    report's :attr:`labels` (e.g. ``"analytic"`` and ``"numeric"``),
    ``finite``, ``note`` (why the row fails regardless of the tolerance: a
    non-finite entry, a missing gradient; else None), ``ok`` and, for
    gradcheck, ``checked`` (how many entries were compared).

    A row passes when it has no note, every entry is finite and
    ``rel_err <= tolerance``; the report passes (``ok``, ``bool(report)``,
    both Python bools) when every row does.  :attr:`max_rel_error` and
    :attr:`max_abs_error` are +inf when a row has a non-finite entry or no
    numbers at all, so ``report.max_rel_error <= tol`` never hides one.
    A report needs at least one row: checking nothing is a ValueError.
    """

    #: names of the compared sides: the values under test, then the reference
    labels = ("a", "b")

    def __init__(self, title, rows, tolerance):
        self.title = str(title)
        self.tolerance = check_tolerance(tolerance)
        self.rows = [self._finish(r) for r in rows]
        if not self.rows:
            raise ValueError(f"{type(self).__name__} with no rows: nothing was checked, and a check "
                             f"of nothing cannot pass")

    # -- building rows ------------------------------------------------------------
    @classmethod
    def row(cls, name, a, b, *, positions=None, shape=None, **extra):
        """A row comparing ``a`` (``labels[0]``) with ``b`` (``labels[1]``) by
        :func:`tensor_errors`; extra keys (e.g. ``checked``) are kept.  A side
        that is None or has the wrong shape gives a failed row saying so."""
        shape = tuple(np.shape(a if b is None else b)) if shape is None else tuple(shape)
        for label, side in zip(cls.labels, (a, b)):
            if side is None:
                return cls.failed_row(name, shape, f"no {label} value (None)", **extra)
        if np.shape(a) != np.shape(b):
            return cls.failed_row(name, shape, f"{cls.labels[0]} has shape {np.shape(a)}, "
                                               f"{cls.labels[1]} {np.shape(b)}", **extra)
        e = tensor_errors(a, b, positions, shape)
        la, lb = cls.labels
        note = None
        if not e["finite"]:                                   # which side(s) hold a NaN or inf
            sides = [lab for lab, side in ((la, a), (lb, b))
                     if not np.isfinite(np.asarray(side, dtype=np.float64)).all()]
            note = "non-finite " + " and ".join(sides)
        return {"name": name, "shape": shape, **extra, "abs_err": e["abs_err"], "rel_err": e["rel_err"],
                "index": e["index"], la: e["a"], lb: e["b"], "finite": e["finite"], "note": note}

    @classmethod
    def failed_row(cls, name, shape, note, **extra):
        """A row that fails for ``note`` (e.g. a missing gradient), with no numbers."""
        return {"name": name, "shape": tuple(shape), **extra, "abs_err": math.inf, "rel_err": math.inf,
                "index": None, cls.labels[0]: None, cls.labels[1]: None, "finite": False, "note": note}

    def _finish(self, row):
        row = {k: _plain(v) for k, v in dict(row).items()}
        row.setdefault("note", None)
        row.setdefault("finite", True)
        if row["note"] is None and not row["finite"]:
            row["note"] = "non-finite entry"                  # a row built by hand
        elif row["note"] is None and not math.isfinite(row["rel_err"]):
            row["note"] = "non-finite error"                  # NaN by hand, or |a - b| overflowed
        row["ok"] = bool(row["note"] is None and row["rel_err"] <= self.tolerance)
        return row

    # -- the verdict --------------------------------------------------------------
    # rows without a note have a finite rel_err (see _finish), so max() never meets a NaN
    @property
    def max_rel_error(self):
        """The largest relative error of any row; +inf when a row is non-finite."""
        return max(math.inf if r["note"] is not None else r["rel_err"] for r in self.rows)

    @property
    def max_abs_error(self):
        """The largest absolute error of any row; +inf when a row is non-finite."""
        return max(math.inf if r["note"] is not None else r["abs_err"] for r in self.rows)

    @property
    def ok(self):
        return all(r["ok"] for r in self.rows)

    def __bool__(self):
        return self.ok

    def to_dict(self):
        """The report as strict JSON values (``json.dumps`` with ``allow_nan=False``
        works): title, tolerance, ok, worst and the rows, with every
        non-finite number written as the string "nan", "inf" or "-inf"."""
        def plain(v):
            if isinstance(v, float) and not math.isfinite(v):
                return str(v)
            return list(v) if isinstance(v, tuple) else v
        rows = [{k: plain(v) for k, v in r.items()} for r in self.rows]
        return {"title": self.title, "tolerance": self.tolerance, "ok": self.ok,
                "worst": self.worst_row["name"], "rows": rows}

    @property
    def worst_row(self):
        """The first row with a note (non-finite, missing) if any, else the
        first row with the largest relative error."""
        for r in self.rows:
            if r["note"] is not None:
                return r
        return max(self.rows, key=lambda r: r["rel_err"])     # all finite here

    # -- printing -----------------------------------------------------------------
    def __str__(self):
        la, lb = self.labels
        checked = any("checked" in r for r in self.rows)
        idx = {id(r): "-" if r["index"] is None else str(r["index"]) for r in self.rows}
        wn = max(16, 2 + max(len(r["name"]) for r in self.rows))
        ws = max(12, 2 + max(len(str(r["shape"])) for r in self.rows))
        wi = max(10, 2 + max(map(len, idx.values())))
        wv = max(16, 2 + len(la), 2 + len(lb))
        head = (f"{'tensor':<{wn}}{'shape':<{ws}}" + (f"{'checked':>7}" if checked else "")
                + f"{'max abs err':>13}{'max rel err':>13}  ok   {'worst at':<{wi}}{la:>{wv}}{lb:>{wv}}")
        lines = [self.title, head]
        for r in self.rows:
            line = (f"{r['name']:<{wn}}{str(r['shape']):<{ws}}"
                    + (f"{r.get('checked', ''):>7}" if checked else "")
                    + f"{r['abs_err']:>13.3e}{r['rel_err']:>13.3e}  {'yes' if r['ok'] else 'NO ':<5}"
                    + f"{idx[id(r)]:<{wi}}{_fmt_value(r[la], wv)}{_fmt_value(r[lb], wv)}")
            lines.append(line + (f"  {r['note']}" if r["note"] else ""))
        lines.append(self._verdict())
        return "\n".join(lines)

    def _verdict(self):
        w, la, lb = self.worst_row, *self.labels
        where = f" at {w['index']}" if w["index"] is not None else ""
        if w["note"] is not None:
            values = f" ({la} {w[la]:.6e}, {lb} {w[lb]:.6e})" if w["index"] is not None else ""
            text = f"worst: {w['name']}, {w['note']}{where}{values}"
        else:
            text = f"worst relative error {w['rel_err']:.3e} in {w['name']}{where}"
        failing = sum(not r["ok"] for r in self.rows)
        if failing:
            text += f"; {failing} of {len(self.rows)} tensors fail"
        return f"{text} (tolerance {self.tolerance:g}): {'PASSED' if self.ok else 'FAILED'}"

    __repr__ = __str__
