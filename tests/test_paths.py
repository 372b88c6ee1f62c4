"""Where configs, search spaces and manifests are found (benchmark/paths.py): the package's or
the checkout's own, or ``$GENREBENCH_HOME``'s where it holds one (the installed wheel itself is
tested in tests/packaging/test_wheel.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from benchmark.errors import ConfigError
from benchmark.paths import code_digest, configs_dir, manifests_dir, search_spaces_dir
from benchmark.tuning.search_space import load_search_space


def test_genrebench_home_replaces_the_folders_it_holds_and_the_digest_follows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shipped = (configs_dir(), manifests_dir(), code_digest())
    spaces = tmp_path / "search_spaces"
    shutil.copytree(search_spaces_dir(), spaces)
    text = (spaces / "logreg.yaml").read_text()
    (spaces / "logreg.yaml").write_text(text + "\n# mine\n")
    monkeypatch.setenv("GENREBENCH_HOME", str(tmp_path))
    assert search_spaces_dir() == spaces
    assert (configs_dir(), manifests_dir()) == shipped[:2]  # not in the folder: the shipped ones
    assert load_search_space("logreg").family == "logreg"
    assert code_digest() != shipped[2]  # an edited search space is other code


def test_genrebench_home_with_none_of_the_folders_is_refused_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GENREBENCH_HOME", str(tmp_path))
    with pytest.raises(ConfigError, match=r"GENREBENCH_HOME=.* holds none of configs/"):
        configs_dir()
