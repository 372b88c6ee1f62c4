"""Where the project's declarative files live (configs, search spaces, dataset manifests).

The repository keeps them in top-level folders (``configs/``, ``search_spaces/``, ``datasets/``,
beside ``benchmark/``: data, not code); the wheel ships the same folders inside the package
(``setup.py`` maps them to ``benchmark/configs`` and so on), found with
:mod:`importlib.resources` so that ``pip install genrebench`` works without the repository. A
source checkout (``PYTHONPATH``) or an editable install, whose package folder has no copy, reads
the repository's folders. ``$GENREBENCH_HOME`` names a folder whose ``configs/``,
``search_spaces/`` or ``datasets/`` replace the shipped ones (each one it holds), to try edited
search spaces with an installed genrebench.
"""

from __future__ import annotations

import hashlib
import os
from importlib.resources import files
from pathlib import Path

from benchmark.errors import ConfigError

__all__ = ["code_digest", "project_root", "search_spaces_dir", "configs_dir", "manifests_dir"]

#: the declarative folders, by their name in the repository and in the installed package
FOLDERS = ("configs", "search_spaces", "datasets")


def project_root() -> Path:
    """The repository checkout the package is imported from (a source tree or an editable
    install): where git's commit and docker-compose.yml are. An installed wheel has none."""
    root = Path(__file__).resolve().parents[1]
    if not ((root / "pyproject.toml").is_file() and (root / "search_spaces").is_dir()):
        raise ConfigError(f"genrebench runs from an installed package ({root}), not a checkout")
    return root


def _folder(name: str) -> Path:
    """``name`` from ``$GENREBENCH_HOME``, else the package's own copy, else the checkout's."""
    home = os.environ.get("GENREBENCH_HOME")
    if home:
        if not any((Path(home) / f).is_dir() for f in FOLDERS):
            raise ConfigError(
                f"GENREBENCH_HOME={home} holds none of {', '.join(f + '/' for f in FOLDERS)}"
            )
        if (Path(home) / name).is_dir():
            return Path(home) / name
    shipped = files("benchmark") / name
    if isinstance(shipped, Path) and shipped.is_dir():
        return shipped
    checkout = Path(__file__).resolve().parents[1] / name
    if checkout.is_dir():
        return checkout
    raise ConfigError(
        f"cannot find {name}/ in the installed package ({shipped}) nor beside it: reinstall "
        "genrebench (`pip install genrebench`, or `pip install -e .` in its repository)"
    )


def search_spaces_dir() -> Path:
    return _folder("search_spaces")


def configs_dir() -> Path:
    return _folder("configs")


def manifests_dir() -> Path:
    return _folder("datasets")


def code_digest() -> str:
    """Hash of the code and declarative files that make results (the package's sources and
    templates, the search spaces, the dataset manifests): what a rerun checks before it reuses
    a saved artefact, so a changed install never passes off an old one as its own. The same
    for a wheel and an editable install of one commit (names and bytes, not locations)."""
    root = Path(__file__).resolve().parent
    files_ = sorted(root.rglob("*.py")) + sorted(root.rglob("*.j2"))
    files_ += sorted(search_spaces_dir().glob("*.yaml")) + sorted(manifests_dir().glob("*"))
    h = hashlib.sha256()
    for f in files_:
        if f.is_file() and "__pycache__" not in f.parts:
            h.update(f.name.encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:16]
