"""The docs match the tree: the architecture page names every module there is and none that is
gone, and no page, docstring or comment points at a repository file that does not exist.

Both read files only (nothing is imported), so a module moved without its docs fails here with
the page or the file and line that still names the old place.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "benchmark"
ARCHITECTURE = ROOT / "docs" / "architecture.md"
SECTION = "## Every module"

#: a repository file named by its path from the root: modules, scripts and tests, configs,
#: search spaces, dataset manifests, doc pages (``<`` or ``*`` in a path makes it a pattern,
#: which this does not match)
FILE_PATH = re.compile(
    r"(?<![\w/.-])("
    r"(?:benchmark|benchmarks|tests|scripts)/[\w./-]*?\.py"
    r"|(?:configs|search_spaces|datasets)/[\w./-]*?\.yaml"
    r"|docs/[\w./-]*?\.md"
    r")(?![\w/-])"
)
#: a page of the repository's root named by its bare name (``README.md``): it must be there
ROOT_PAGE = re.compile(r"(?<![\w/.-])([A-Z][A-Z_]*\.md)\b")
#: a fenced block that starts with ``# <path>`` shows a file the reader would write (an example
#: family, feature set, config): that path is not expected to exist
EXAMPLE_FILE = re.compile(r"^```\w*\n\s*#\s*(\S+)\s*$", re.M)


def _listed_modules(page: str) -> list[str]:
    """The path that opens each list item of the module section: ``- `tuning/fold.py`: …``."""
    assert SECTION in page, f"{ARCHITECTURE.name} has no {SECTION!r} section"
    section = page.split(SECTION, 1)[1]
    section = re.split(r"^## ", section, maxsplit=1, flags=re.M)[0]
    return re.findall(r"^- `([^`]+)`", section, re.M)


def _module_names(root: Path) -> set[str]:
    """Every module under ``root``, as the page writes it: ``x.py`` or ``pkg/x.py`` relative to
    ``root``, a package as its folder (``pkg/``), the root's own ``__init__.py`` as itself."""
    names = set()
    for path in root.rglob("*.py"):
        rel = path.relative_to(root)
        if rel.name == "__init__.py" and rel.parent != Path("."):
            names.add(rel.parent.as_posix() + "/")
        else:
            names.add(rel.as_posix())
    return names


def test_the_architecture_page_names_every_module_and_no_other() -> None:
    listed = _listed_modules(ARCHITECTURE.read_text(encoding="utf-8"))
    modules = _module_names(PACKAGE)
    assert len(modules) > 40, f"only {len(modules)} modules under {PACKAGE}: wrong folder?"
    missing = sorted(modules - set(listed))
    extra = sorted(set(listed) - modules)
    twice = sorted({name for name in listed if listed.count(name) > 1})
    assert not (missing or extra or twice), (
        f"docs/architecture.md, {SECTION!r} (paths relative to benchmark/):\n"
        f"  modules it does not name: {missing}\n"
        f"  names that are no module: {extra}\n"
        f"  named twice: {twice}"
    )


def test_every_module_file_the_architecture_page_names_exists() -> None:
    """The stages table and the import rules name modules by file name (``fold.py``) or by a
    path relative to ``benchmark/`` (``inference/pool.py``): each must be a module there (or a
    file at the repository's root, ``setup.py``)."""
    page = ARCHITECTURE.read_text(encoding="utf-8")
    names = set(re.findall(r"`([\w/]+\.py)`", page))
    relative = _module_names(PACKAGE)
    basenames = {name.rsplit("/", 1)[-1] for name in relative}
    gone = sorted(
        n
        for n in names
        if n not in (relative if "/" in n else basenames) and not (ROOT / n).is_file()
    )
    assert not gone, f"docs/architecture.md names module files that do not exist: {gone}"


def _doc_text(path: Path) -> str:
    """The prose of ``path``: a page whole (example files' paths blanked); of a Python file its
    docstrings and comments only, where a reader is told where something is (code's own
    string literals are data, such as a missing file a test asks for on purpose)."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".md":
        return EXAMPLE_FILE.sub("```", text)
    parts = []
    for node in ast.walk(ast.parse(text, filename=str(path))):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            doc = ast.get_docstring(node, clean=False)
            if doc:
                parts.append(doc)
    for token in tokenize.generate_tokens(io.StringIO(text).readline):
        if token.type == tokenize.COMMENT:
            parts.append(token.string)
    return "\n".join(parts)


def _documented_files() -> Iterator[Path]:
    yield ROOT / "README.md"
    yield from sorted((ROOT / "docs").rglob("*.md"))
    yield ROOT / "setup.py"
    for folder in ("benchmark", "benchmarks", "tests", "scripts"):
        yield from sorted((ROOT / folder).rglob("*.py"))


def _dangling(text: str) -> list[str]:
    paths = {m.group(1) for m in FILE_PATH.finditer(text)}
    pages = {m.group(1) for m in ROOT_PAGE.finditer(text)}
    return sorted(p for p in paths | pages if not (ROOT / p).is_file())


def test_no_doc_docstring_or_comment_names_a_file_the_repository_lacks() -> None:
    bad = [
        f"{path.relative_to(ROOT)}: {name}"
        for path in _documented_files()
        for name in _dangling(_doc_text(path))
    ]
    assert not bad, "references to files that are not in the repository:\n" + "\n".join(bad)


def _module_exists(dotted: str) -> bool:
    path = ROOT.joinpath(*dotted.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _gone_modules(path: Path, text: str) -> list[str]:
    """The ``:mod:`` targets in ``text`` (``path``'s prose) that are no module of genrebench: a
    relative one (``.view``) is read from ``path``'s package, as Sphinx and mkdocstrings do."""
    package = path.relative_to(ROOT).parent.as_posix().replace("/", ".")
    gone = []
    for target in re.findall(r":mod:`~?([\w.]+)`", text):
        dotted = package + target if target.startswith(".") else target
        if dotted.split(".")[0] == "benchmark" and not _module_exists(dotted):
            gone.append(target)
    return gone


def test_every_module_a_docstring_or_page_names_exists() -> None:
    bad = [
        f"{path.relative_to(ROOT)}: :mod:`{name}`"
        for path in _documented_files()
        for name in _gone_modules(path, _doc_text(path))
    ]
    assert not bad, "references to modules that do not exist:\n" + "\n".join(bad)


def test_the_reference_check_sees_a_dangling_path(tmp_path: Path) -> None:
    """The reader is not blind: a gone module, a page outside the repository and a stale path in
    a comment are found; patterns, example files and code's own strings are not."""
    gone, outside = "benchmark/predict_pipeline.py", "DESIGN" + ".md"
    found = _dangling(f"see `{gone}` and {outside}; `benchmark/<pkg>/x.py`")
    assert found == sorted([gone, outside])
    assert _dangling("`tests/tuning/test_fold.py`, configs/quick.yaml, README.md") == []
    page = tmp_path / "p.md"
    page.write_text("```python\n# benchmark/models/extra_trees.py\nx = 1\n```\n")
    assert _dangling(_doc_text(page)) == []
    module = tmp_path / "m.py"
    module.write_text(f'"""Doc."""\n\n# was {gone}\nPATH = "configs/nope.yaml"\n')
    assert _dangling(_doc_text(module)) == [gone]
    listed = _listed_modules(f"{SECTION}\n\n- `a.py`: one\n- `pkg/`: two\n\n## Next\n- `b.py`\n")
    assert listed == ["a.py", "pkg/"]
    here = PACKAGE / "report" / "view.py"
    assert _gone_modules(here, ":mod:`.figures`, :mod:`~benchmark.tuning.fold`") == []
    assert _gone_modules(here, ":mod:`.predict`, :mod:`benchmark.predict_pipeline`") == [
        ".predict",
        "benchmark.predict_pipeline",
    ]
