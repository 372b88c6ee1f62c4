"""The page itself: the view model plus its figures, rendered through the jinja2 template
``benchmark/templates/leaderboard.html.j2`` and written atomically as ``leaderboard.html``."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from benchmark.report.figures import add_figures
from benchmark.report.formatting import p_is, pct, pval
from benchmark.report.view import build_view
from benchmark.results import LEADERBOARD_FILE

__all__ = ["LEADERBOARD", "build_context", "render", "write_report"]

#: the page's file name (re-exported as the report's public name)
LEADERBOARD = LEADERBOARD_FILE


def build_context(results_dir: Path) -> dict[str, Any]:
    """Everything the template shows, from the files of ``results_dir``."""
    return add_figures(build_view(results_dir))


def _environment():
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("benchmark", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"], default=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["pct"] = pct
    env.filters["pval"] = pval
    env.filters["p_is"] = _p_is_markup
    env.filters["breakable"] = _breakable
    return env


def _breakable(name: object) -> Any:
    """A registry name that may wrap after its underscores (``embedding_<wbr>musicnn``): a
    narrow table column breaks it there rather than anywhere, and copies the same text."""
    from markupsafe import Markup, escape

    return Markup(str(escape(name)).replace("_", "_<wbr>"))


def _p_is_markup(value: object, name: str = "p") -> Any:
    """:func:`p_is` in the template: ``name`` is the template's own markup (``p<sub>Holm</sub>``),
    the relation and the number are escaped text."""
    from markupsafe import Markup, escape

    return Markup(name) + escape(p_is(value, ""))


def render(context: Mapping[str, Any]) -> str:
    """The page's HTML; the figures, drawn here, are marked safe, everything else is escaped."""
    from markupsafe import Markup

    ctx = dict(context)
    ctx["cd"] = dict(
        ctx["cd"], svg=Markup(ctx["cd"]["svg"]), svg_narrow=Markup(ctx["cd"].get("svg_narrow", ""))
    )
    for sec in ctx["protocols"]:
        sec["chart"] = Markup(sec["chart"])
        sec["chart_narrow"] = Markup(sec["chart_narrow"])
        for h in sec["histories"]:
            h["svg"] = Markup(h["svg"])
    return _environment().get_template("leaderboard.html.j2").render(**ctx)


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".html.tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_report(results_dir: Path) -> Path:
    """Write ``<results_dir>/leaderboard.html`` from the results files; returns its path."""
    results_dir = Path(results_dir)
    page = render(build_context(results_dir))
    path = results_dir / LEADERBOARD
    _atomic_write(path, page)
    return path
