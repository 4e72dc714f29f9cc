"""Error reports: how far one set of gradients is from a trusted reference."""
from __future__ import annotations

import numpy as np

__all__ = ["ErrorReport", "tensor_errors"]


def tensor_errors(a, b):
    """(max absolute error, max relative error) between arrays a and b.

    The relative error is ``max_i |a_i - b_i| / max_i max(|a_i|, |b_i|)``: the
    worst disagreement measured against the tensor's largest entry, so
    entries that are 0 or tiny are judged on the scale of the rest instead
    of being divided by ~0.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    diff = np.abs(a - b)
    scale = max(np.abs(a).max(initial=0.0), np.abs(b).max(initial=0.0))
    abs_err = float(diff.max(initial=0.0))
    return abs_err, (abs_err / scale if scale > 0 else abs_err)


class ErrorReport:
    """A table with one row per tensor (name, shape, [entries checked], max
    absolute and max relative error, see :func:`tensor_errors`) and a verdict
    against ``tolerance`` on the relative error.  Truthy when it passes."""

    def __init__(self, title, rows, tolerance):
        self.title, self.rows, self.tolerance = title, rows, tolerance

    @property
    def max_rel_error(self):
        return max((r["rel_err"] for r in self.rows), default=0.0)

    @property
    def max_abs_error(self):
        return max((r["abs_err"] for r in self.rows), default=0.0)

    @property
    def ok(self):
        return self.max_rel_error <= self.tolerance

    def __bool__(self):
        return self.ok

    def __str__(self):
        checked = any("checked" in r for r in self.rows)
        head = f"{'tensor':<16}{'shape':<14}" + (f"{'checked':>8}" if checked else "")
        lines = [self.title, head + f"{'max abs err':>14}{'max rel err':>14}  ok"]
        for r in self.rows:
            lines.append(f"{r['name']:<16}{str(r['shape']):<14}"
                         + (f"{r.get('checked', ''):>8}" if checked else "")
                         + f"{r['abs_err']:>14.3e}{r['rel_err']:>14.3e}  "
                         + ("yes" if r["rel_err"] <= self.tolerance else "NO"))
        verdict = "PASSED" if self.ok else "FAILED"
        lines.append(f"worst relative error {self.max_rel_error:.3e} (tolerance {self.tolerance:.0e}): {verdict}")
        return "\n".join(lines)

    __repr__ = __str__
