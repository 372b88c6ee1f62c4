"""Where the project's declarative files live (configs, search spaces, dataset manifests).

They sit beside the package in the repository (see DESIGN.md); ``$GENREBENCH_HOME`` overrides the
root for installs that keep them elsewhere.
"""

from __future__ import annotations

import os
from pathlib import Path

from benchmark.errors import ConfigError

__all__ = ["project_root", "search_spaces_dir", "configs_dir", "manifests_dir"]


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
