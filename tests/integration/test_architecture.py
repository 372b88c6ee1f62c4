"""The floor plan holds: stages meet through files and public faces, rooms stay small.

Plugins and stages import ``execution.plan`` at most, never the wing's internals; ``config``
imports nothing above it; no module over ~600 lines; no import circle; the top of the package
holds only what every stage shares; the inference pool and pipeline load no model library.
Most of these read the source (no imports run), so a move that breaks a rule fails here with the
file and line that broke it.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "benchmark"
MAX_LINES = 600
#: what a module outside the wing may import from it: its public face and the plan
WING_PUBLIC = {"benchmark.execution", "benchmark.execution.plan"}
#: config sits at the bottom: only these (and the standard library, yaml) at module level
CONFIG_MAY_IMPORT = {"benchmark.errors", "benchmark.paths"}


def _modules() -> list[Path]:
    found = sorted(PACKAGE.rglob("*.py"))
    assert len(found) > 40, f"only {len(found)} modules under {PACKAGE}: wrong folder?"
    return found


def _imports(path: Path, *, top_level_only: bool = False) -> list[tuple[int, str]]:
    """``(line, module)`` of every ``benchmark`` import in ``path`` (lazy ones too, unless
    ``top_level_only``: then only what runs on import; ``TYPE_CHECKING`` blocks never run)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    out = []
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
    return [(n, m) for n, m in out if m == "benchmark" or m.startswith("benchmark.")]


def _rel(path: Path) -> str:
    return str(path.relative_to(PACKAGE.parent))


@pytest.mark.parametrize("path", _modules(), ids=_rel)
def test_no_module_is_a_big_room(path: Path) -> None:
    n = len(path.read_text().splitlines())
    assert n <= MAX_LINES, f"{_rel(path)} has {n} lines (> {MAX_LINES}): split it by concept"


def test_stages_import_the_execution_wing_only_through_its_plan_or_face() -> None:
    wing = PACKAGE / "execution"
    bad = [
        f"{_rel(p)}:{line} imports {mod}"
        for p in _modules()
        if wing not in p.parents
        for line, mod in _imports(p)
        if mod.startswith("benchmark.execution") and mod not in WING_PUBLIC
    ]
    assert not bad, "outside benchmark/execution, import only its plan or package:\n" + "\n".join(
        bad
    )


def test_the_execution_wing_is_where_its_modules_are() -> None:
    wing = {p.stem for p in (PACKAGE / "execution").rglob("*.py")}
    expected = {"plan", "local", "schedule", "time_budget", "cost", "racing", "outputs"}
    assert expected <= wing, sorted(expected - wing)
    # one engine: the claims board and its worker went with Dask (issue 41)
    assert not (PACKAGE / "execution/workers").exists()
    assert {"cluster", "fold_outcomes", "status"} <= wing
    # the old flat names are gone for good (a copy left behind would drift)
    for old in ("runner", "worker", "claims", "scheduling", "budget", "trial_budget", "sampling"):
        assert not (PACKAGE / f"{old}.py").exists(), f"benchmark/{old}.py is back"


def _module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_circles(root: Path) -> set[frozenset[str]]:
    """The modules of package ``root`` that import each other round a circle (lazy imports
    count: they run too), as sets; a package's own ``__init__`` re-exports are left out."""
    files = {_module_name(p, root): p for p in sorted(root.rglob("*.py"))}
    edges: dict[str, set[str]] = {}
    for name, path in files.items():
        found = set()
        for _, target in _imports(path):
            while target and target not in files:
                target = target.rpartition(".")[0]
            family = target.startswith(name + ".") or name.startswith(target + ".")
            if target and target != name and not family:
                found.add(target)
        edges[name] = found
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles: set[frozenset[str]] = set()

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.add(frozenset(component))

    for v in edges:
        if v not in index:
            visit(v)
    return circles


def test_no_import_circle() -> None:
    found = import_circles(PACKAGE)
    assert not found, "import circles: " + "; ".join(" <-> ".join(sorted(c)) for c in found)


#: the modules at the top of ``benchmark/``: what every stage shares. A stage's module goes in
#: its package (tuning/, inference/, final_model/, audio/, execution/, …), never here.
TOP_LEVEL = {
    "__init__",
    "config",
    "errors",
    "paths",
    "registry",
    "results",
    "scoring",
    "storage",
    "testing",
}


def test_the_top_of_the_package_holds_only_what_every_stage_shares() -> None:
    found = {p.stem for p in PACKAGE.glob("*.py")}
    assert found - TOP_LEVEL == set(), (
        f"new top-level module(s) {sorted(found - TOP_LEVEL)}: put them in their stage's package"
    )


def test_the_inference_pool_and_pipeline_import_no_model_library() -> None:
    """The fork server preloads the pipeline: importing it (and the pool) must load none of the
    model's libraries (``pool.MODEL_LIBRARIES``: native thread pools a fork copies badly,
    seconds a user waits on), or every worker would (the rule lived in comments before)."""
    from benchmark.inference.pool import MODEL_LIBRARIES

    assert {"sklearn", "lightgbm", "jax", "keras", "mlflow"} <= set(MODEL_LIBRARIES)
    code = (
        "import sys, benchmark.inference.pool, benchmark.inference.pipeline; "
        f"print(sorted(m for m in {MODEL_LIBRARIES!r} if m in sys.modules))"
    )
    res = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        cwd=PACKAGE.parent,
    )
    assert res.stdout.strip() == "[]", f"importing the pipeline loads {res.stdout.strip()}"


def test_the_circle_check_sees_a_lazy_circle(tmp_path: Path) -> None:
    pkg = tmp_path / "benchmark"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from benchmark.b import f\n")
    (pkg / "b.py").write_text("def f():\n    from benchmark import a\n")
    (pkg / "c.py").write_text("import benchmark.a\n")
    assert import_circles(pkg) == set()  # b imports the package, not a
    (pkg / "b.py").write_text("def f():\n    from benchmark.a import g\n")
    assert import_circles(pkg) == {frozenset({"benchmark.a", "benchmark.b"})}


def test_config_imports_nothing_above_it_at_module_level() -> None:
    bad = [
        f"benchmark/config.py:{line} imports {mod}"
        for line, mod in _imports(PACKAGE / "config.py", top_level_only=True)
        if mod not in CONFIG_MAY_IMPORT
    ]
    assert not bad, "\n".join(bad)


def test_config_never_reaches_into_the_execution_wing() -> None:
    """Duration parsing and the racing settings live in config, not in the wing it configures."""
    bad = [
        f"benchmark/config.py:{line} imports {mod}"
        for line, mod in _imports(PACKAGE / "config.py")
        if mod.startswith("benchmark.execution")
    ]
    assert not bad, "\n".join(bad)


def test_the_checks_see_a_violation(tmp_path: Path) -> None:
    """The import reader finds lazy imports too (a rule checked by a blind reader passes)."""
    src = tmp_path / "m.py"
    src.write_text("def f():\n    from benchmark.execution.schedule import Scheduler\n")
    assert _imports(src) == [(2, "benchmark.execution.schedule")]
    assert _imports(src, top_level_only=True) == []
