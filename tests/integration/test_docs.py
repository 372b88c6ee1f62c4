"""The documentation site builds without a warning, and nothing the README links to or once held
is missing from it."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"

#: the headings of the README before it was cut to a summary (2026-12), and the bold paragraph
#: titles of its dated measurements: each must still be a heading somewhere under docs/
OLD_README_HEADINGS = [
    "Set-up: two commands",
    "What a run does",
    "Results files",
    "A budget, racing and the cost model: the full benchmark on one machine",
    "The two racing tests replayed",
    "Against its unbudgeted reference",
    "How much of that τ is the search's luck",
    "The same 1-h run with racing from four folds",
    "Ensembles over the tuned pairs",
    "With the spectrogram CNN among the members",
    "Leaderboard",
    "The final model",
    "Audio: features from the audio files, and genrebench predict",
    "On the shared copy's 115 audio clips",
    "Speed",
    "Agreement with Kaggle's CSV",
    "Band-limited input",
    "Neural families (Keras 3 on JAX)",
    "In the benchmark",
    "Backend choice",
    "Scale-out: one benchmark, many workers",
    "How the full config scales",
    "Development",
]


def _norm(heading: str) -> str:
    return re.sub(r"\s+", " ", heading.replace("`", "")).strip().lower()


def _doc_headings() -> set[str]:
    found = set()
    for page in DOCS.rglob("*.md"):
        in_code = False
        for line in page.read_text(encoding="utf-8").splitlines():
            if line.lstrip().startswith("```"):
                in_code = not in_code
            elif not in_code and (m := re.match(r"#{1,6}\s+(.+?)\s*#*$", line)):
                found.add(_norm(m.group(1)))
    return found


def _nav_pages(nav: object) -> list[str]:
    if isinstance(nav, str):
        return [nav]
    if isinstance(nav, list):
        return [p for item in nav for p in _nav_pages(item)]
    if isinstance(nav, dict):
        return [p for value in nav.values() for p in _nav_pages(value)]
    return []


@pytest.mark.skipif(importlib.util.find_spec("mkdocs") is None, reason="mkdocs is not installed")
def test_site_builds_strict(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout}\n{proc.stderr}"
    assert (tmp_path / "site" / "api" / "config" / "index.html").exists()


def test_readme_relative_links_exist() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    links = re.findall(r"\]\(([^)\s]+)\)", text)
    relative = [link for link in links if not re.match(r"[a-z]+:|#", link)]
    assert relative, "the README links to no docs page"
    missing = [link for link in relative if not (ROOT / link.split("#")[0]).exists()]
    assert not missing, f"README links to missing files: {missing}"


def test_every_page_is_in_the_nav() -> None:
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    nav = set(_nav_pages(config["nav"]))
    pages = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")}
    assert not pages - nav, f"pages missing from mkdocs.yml nav: {sorted(pages - nav)}"
    assert not nav - pages, f"nav entries without a page: {sorted(nav - pages)}"


def test_api_pages_cover_the_stage_modules() -> None:
    text = "\n".join(p.read_text(encoding="utf-8") for p in (DOCS / "api").glob("*.md"))
    stages = "config data features protocols tuning models results execution execution.plan"
    later = "ensembles stats report final_model inference inference.predict audio tracking registry"
    for module in (*stages.split(), *later.split()):
        assert re.search(rf"^::: benchmark\.{re.escape(module)}$", text, re.M), module


@pytest.mark.parametrize("heading", OLD_README_HEADINGS)
def test_old_readme_heading_is_in_the_docs(heading: str) -> None:
    assert _norm(heading) in _doc_headings(), f"heading {heading!r} is in no docs/ page"
