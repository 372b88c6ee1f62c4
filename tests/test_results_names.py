"""Each results file is named once, in ``benchmark/results.py``: no module spells one out.

The check reads the source (an AST scan of string constants, docstrings left out): a file name
such as ``"results.parquet"`` anywhere, or a folder name such as ``"outcomes"`` joined into a
path (``folder / "outcomes"``) or given to a name (``X = "outcomes"``), fails here with the
file and line; the same word as a config key or a tag value is no file name and passes.
"""

from __future__ import annotations

import ast
from pathlib import Path

from helpers import loaded_on_import

from benchmark import results

PACKAGE = Path(__file__).resolve().parents[1] / "benchmark"
#: the names results.py gives: every module-level ``*_FILE``, ``*_DIR`` and ``*_DB`` string
NAMES = {
    value
    for key, value in vars(results).items()
    if key.endswith(("_FILE", "_DIR", "_DB")) and isinstance(value, str)
}
#: TEMPORARY: modules the integrator is splitting (issue 40) still spell some names out; remove
#: each entry once its successor modules read the names from benchmark.results


def _docstrings(tree: ast.AST) -> set[int]:
    """The ids of the constants that are docstrings (a module's, class's or function's)."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                out.add(id(body[0].value))
    return out


def spelled_out_names(path: Path, names: set[str]) -> list[tuple[int, str]]:
    """``(line, name)`` of each results file name ``path`` writes as a string literal."""
    tree = ast.parse(path.read_text(), filename=str(path))
    docstrings = _docstrings(tree)
    parents = {id(child): node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    found = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Constant) and node.value in names):
            continue
        if id(node) in docstrings:
            continue
        parent = parents.get(id(node))
        is_file = "." in node.value
        in_path = isinstance(parent, ast.BinOp) and isinstance(parent.op, ast.Div)
        named = isinstance(parent, ast.Assign | ast.AnnAssign)
        if is_file or in_path or named:
            found.append((node.lineno, node.value))
    return sorted(found)


def test_results_py_names_every_results_file() -> None:
    expected = {"results.parquet", "predictions.parquet", "run.json", "optuna.db", "mlflow.db"}
    assert expected <= NAMES and len(NAMES) >= 19, sorted(NAMES)


def test_no_module_spells_out_a_results_file_name() -> None:
    bad = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = str(path.relative_to(PACKAGE.parent))
        if rel == "benchmark/results.py":
            continue
        bad += [
            f"{rel}:{line} spells out {name!r}" for line, name in spelled_out_names(path, NAMES)
        ]
    assert not bad, "use the names of benchmark/results.py:\n" + "\n".join(bad)


def test_the_names_load_neither_numpy_nor_pandas() -> None:
    # the CLI's start-up (and the storage, the inference pool) import these names: results.py
    # must stay as light as they are
    modules = ["benchmark.results", "benchmark.cli"]
    assert loaded_on_import(modules, ["numpy", "pandas", "sklearn"]) == []


def test_the_check_sees_a_name_and_passes_words_and_docstrings(tmp_path: Path) -> None:
    module = tmp_path / "mod.py"
    module.write_text(
        '"""Writes results.parquet."""\n'
        "from pathlib import Path\n"
        "def f(d: Path) -> Path:\n"
        '    """Reads ``run.json``."""\n'
        '    out = {"ensembles": 1, "kind": "final_model"}\n'
        '    return d / "outcomes" / "results.parquet"\n'
        'CACHE = "cache"\n'
    )
    assert spelled_out_names(module, NAMES) == [
        (6, "outcomes"),
        (6, "results.parquet"),
        (7, "cache"),
    ]
