"""`pip wheel .` makes a genrebench that works without its repository (issue 41, part 2).

The wheel is built from a clean copy of the checkout (no stale ``build/`` or ``*.egg-info``) the
way a user builds it (pip, build isolation, pyproject's build requirements), then installed into
a fresh virtual environment that sees this environment's third-party packages but not its
genrebench: a ``.pth`` line names this environment's site-packages, whose own ``.pth`` files
(the editable install's finder among them) Python does not process from there. Every command
runs from an empty folder, with no ``PYTHONPATH`` or ``GENREBENCH_HOME``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
#: what a clean checkout does not hold at its top (git-ignored outputs and environments)
JUNK = {".git", ".venv", "build", "dist", "results", "data", "site", "mlruns"}


def _junk(folder: str, names: list[str]) -> set[str]:
    """``shutil.copytree``'s ignore: :data:`JUNK` at the top, caches and egg-info anywhere."""
    top = JUNK if Path(folder) == REPO else set()
    return {n for n in names if n in top or n.endswith((".egg-info", "_cache", "__pycache__"))}


def _build(src: Path, dist: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", dist, src]
    subprocess.run(cmd, check=True, timeout=300)
    (found,) = dist.glob("genrebench-*.whl")
    return found


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("wheel")
    shutil.copytree(REPO, tmp / "src", ignore=_junk)
    return _build(tmp / "src", tmp / "dist")


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh environment with the wheel installed; returns its ``bin`` folder."""
    env = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", env], check=True, timeout=120)
    python = env / "bin" / "python"
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    parent = dict.fromkeys(sysconfig.get_paths()[k] for k in ("purelib", "platlib"))
    Path(site, "_parent_packages.pth").write_text("".join(f"{p}\n" for p in parent))
    # this environment's genrebench is on the parent path: install beside it, not over it
    pip = [python, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--ignore-installed"]
    subprocess.run([*pip, wheel], check=True, timeout=300, env=_clean_env())
    return env / "bin"


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "GENREBENCH_HOME"}}
    return env | {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}


def _run(args: list[str | Path], cwd: Path, timeout: int = 300) -> str:
    proc = subprocess.run(
        args, cwd=cwd, env=_clean_env(), capture_output=True, text=True, timeout=timeout
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def test_the_wheel_holds_every_config_search_space_and_manifest(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for folder in ("configs", "search_spaces", "datasets"):
        shipped = {f"benchmark/{folder}/{p.name}" for p in (REPO / folder).glob("*.yaml")}
        assert shipped and shipped <= names, sorted(shipped - names)
    assert not [n for n in names if n.startswith("benchmarks/")]  # the scripts stay out


def test_the_installed_wheel_reads_its_own_files_outside_the_repository(
    venv: Path, tmp_path: Path
) -> None:
    code = (
        "import benchmark, benchmark.paths as p;"
        "print(benchmark.__file__); print(p.search_spaces_dir()); print(p.code_digest())"
    )
    where, spaces, digest = _run([venv / "python", "-c", code], tmp_path).split()
    assert Path(where).is_relative_to(venv.parent), where
    assert Path(spaces).is_relative_to(venv.parent), spaces
    from benchmark.paths import code_digest

    assert digest == code_digest()  # a wheel and the checkout of one commit: one digest

    listing = _run([venv / "genrebench", "list"], tmp_path)
    assert "logreg" in listing and "csv_30s" in listing
    configs = next(line for line in listing.splitlines() if line.startswith("configs"))
    assert {"smoke", "quick", "full"} <= set(configs.split(": ")[1].split(", "))


@pytest.mark.integration
def test_the_installed_wheel_runs_smoke_on_the_real_data(
    venv: Path, real_gtzan: Path, tmp_path: Path
) -> None:
    args = ["run", "--config", "smoke", "--data-dir", real_gtzan, "--results-dir", "results"]
    _run([venv / "genrebench", *args], tmp_path, timeout=600)
    import pandas as pd

    res = pd.read_parquet(tmp_path / "results" / "smoke" / "results.parquet")
    assert set(res["status"]) == {"done"}, res[["family", "message"]]
    assert {"logreg", "seed_mlp"} <= set(res["family"])


def test_the_docker_image_builds_the_same_wheel_and_installs_it_with_audio(
    wheel: Path, tmp_path: Path
) -> None:
    """No Docker engine here: the Dockerfile's first stage copies these files alone, and the
    wheel built from them must be the checkout's; the image installs it with the audio extra
    and musicnn's checkpoints (no dependencies, as .ci/run)."""
    build, image = (REPO / "Dockerfile").read_text().split("\nFROM ")[1:]
    src = tmp_path / "src"
    src.mkdir()
    for line in build.splitlines():
        if line.startswith("COPY "):  # COPY a b ./ or COPY folder ./folder
            *sources, target = line.split()[1:]
            for name in sources:
                if (REPO / name).is_dir():
                    shutil.copytree(REPO / name, src / target, ignore=_junk)
                else:
                    shutil.copy(REPO / name, src / target)
    assert "pip wheel --no-cache-dir --no-deps --wheel-dir /dist ." in build
    docker_wheel = _build(tmp_path / "src", tmp_path / "dist")
    assert sorted(zipfile.ZipFile(docker_wheel).namelist()) == sorted(
        zipfile.ZipFile(wheel).namelist()
    )
    install = " ".join(image.split("\\\n"))
    assert '"$(echo /dist/genrebench-*.whl)[audio]"' in install
    assert "pip install --no-cache-dir --no-deps musicnn==0.1.0" in install
    assert "WORKDIR /src" not in image  # no source tree beside the installed package
