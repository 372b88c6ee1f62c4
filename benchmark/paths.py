"""Where the project's declarative files live (configs, search spaces, dataset manifests).

They sit beside the package in the repository (see DESIGN.md); ``$GENREBENCH_HOME`` overrides the
root for installs that keep them elsewhere.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from benchmark.errors import ConfigError

__all__ = ["code_digest", "project_root", "search_spaces_dir", "configs_dir", "manifests_dir"]


def project_root() -> Path:
    env = os.environ.get("GENREBENCH_HOME")
    root = Path(env) if env else Path(__file__).resolve().parents[1]
    if not (root / "search_spaces").is_dir():
        raise ConfigError(
            f"cannot find search_spaces/ under {root}: install genrebench with `pip install -e .` "
            "from its repository, or set GENREBENCH_HOME to the repository root"
        )
    return root


def search_spaces_dir() -> Path:
    return project_root() / "search_spaces"


def configs_dir() -> Path:
    return project_root() / "configs"


def manifests_dir() -> Path:
    return project_root() / "datasets"


def code_digest() -> str:
    """Hash of the code and declarative files that make results (the package's sources and
    templates, the search spaces, the dataset manifests): what a rerun checks before it reuses
    a saved artefact, so a changed install never passes off an old one as its own."""
    root = Path(__file__).resolve().parent
    files = sorted(root.rglob("*.py")) + sorted(root.rglob("*.j2"))
    try:
        files += sorted(search_spaces_dir().glob("*.yaml")) + sorted(manifests_dir().glob("*"))
    except ConfigError:  # an install without the repository's files: the package alone
        pass
    h = hashlib.sha256()
    for f in files:
        if f.is_file() and "__pycache__" not in f.parts:
            h.update(f.name.encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:16]
