"""How numbers read on the page: one place, so a table cell, a tooltip and a chart label that show
the same value show it the same way."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["exact", "fmt_param", "num", "p_is", "pct", "pp", "pval", "secs", "short"]


def num(value: Any) -> float:
    """``value`` as a float; anything that is not a number is NaN."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return math.nan
    return v


def exact(value: Any) -> str:
    """A float as a data attribute: ``repr`` round-trips exactly; NaN is ``nan``."""
    v = num(value)
    return "nan" if math.isnan(v) else repr(v)


def pct(value: Any, digits: int = 1) -> str:
    v = num(value)
    return "–" if math.isnan(v) else f"{100 * v:.{digits}f} %"


def pp(value: Any, digits: int = 1) -> str:
    """A difference of accuracies in percentage points."""
    v = num(value)
    if math.isnan(v):
        return "–"
    return f"{100 * v:+.{digits}f} pp".replace("-", "−")


#: below this a p-value prints as a bound: three decimals say nothing finer than that
P_FLOOR = 0.001


def pval(value: Any) -> str:
    """A p-value as a table cell under a "p" header: ``< 0.001``, ``0.012``, ``–`` if missing."""
    v = num(value)
    if math.isnan(v):
        return "–"
    if v < P_FLOOR:
        return f"< {P_FLOOR}"
    return f"{v:.3f}"


def p_is(value: Any, name: str = "p") -> str:
    """A p-value in a sentence: ``p < 0.001``, ``p = 0.012``, ``p = –`` if missing. The relation
    belongs to the value (a bound reads ``<``, never ``= <``); ``name`` may be markup such as
    ``p<sub>Holm</sub>`` when the caller marks the result safe."""
    text = pval(value)
    return f"{name} {text}" if text.startswith("<") else f"{name} = {text}"


def secs(value: Any) -> str:
    v = num(value)
    if math.isnan(v):
        return "–"
    if v >= 100:
        return f"{v:.0f} s"
    if v >= 1:
        return f"{v:.1f} s"
    return f"{v:.2f} s"


def short(text: Any, n: int = 12) -> str:
    s = str(text or "")
    return s[:n]


def fmt_param(v: Any) -> str:
    """A tuned hyperparameter value: floats to 4 significant digits."""
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)
