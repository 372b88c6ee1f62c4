"""The folder is the registry (benchmark/registry.py): discovery finds the shipped plugins of
every kind, refuses two plugins of one name, and an unknown name lists the known ones."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from benchmark.errors import ConfigError
from benchmark.features import all_feature_sets
from benchmark.models import all_families
from benchmark.protocols import all_protocols
from benchmark.registry import discover, lookup, subclasses_named


def test_discovery_finds_at_least_one_plugin_of_every_kind() -> None:
    """Tests parametrized over what discovery finds would pass on an empty registry: this one
    fails instead, naming the kind that came back empty."""
    found = {
        "family": all_families(),
        "feature set": all_feature_sets(),
        "protocol": all_protocols(),
    }
    assert [kind for kind, plugins in found.items() if not plugins] == []
    assert {"logreg", "lda", "dummy"} <= set(found["family"])
    assert {"csv_30s", "csv_3s", "spectrogram_img"} <= set(found["feature set"])
    assert {"artist_kfold", "fault_filtered"} <= set(found["protocol"])


class _Base:
    name = ""


def _package(tmp_path: Path, modules: dict[str, str]) -> tuple[str, list[str]]:
    pkg = tmp_path / "plugs"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    for name, body in modules.items():
        (pkg / f"{name}.py").write_text(body)
    return "plugs", [str(pkg)]


@pytest.fixture
def on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for mod in [m for m in sys.modules if m == "plugs" or m.startswith("plugs.")]:
        del sys.modules[mod]


def _pick(module) -> list[tuple[str, object]]:
    return [(n, v) for n, v in vars(module).items() if n.startswith("plugin_")]


def test_discover_sorts_by_name_and_skips_private_and_excluded_modules(on_path: Path) -> None:
    package, path = _package(
        on_path,
        {"b": "plugin_z = 1\nplugin_a = 2\n", "_hidden": "plugin_h = 3\n", "old": "plugin_o = 4\n"},
    )
    found = discover(package, path, "plugin", _pick, skip=["old"])
    assert list(found) == ["plugin_a", "plugin_z"] and found["plugin_z"] == 1


def test_two_plugins_of_one_name_fail_naming_both_modules(on_path: Path) -> None:
    package, path = _package(on_path, {"one": "plugin_x = 1\n", "two": "plugin_x = 2\n"})
    with pytest.raises(ConfigError, match=r"two plugins are named 'plugin_x': in plugs.one and "):
        discover(package, path, "plugin", _pick)


def test_subclasses_named_picks_only_named_subclasses_defined_in_the_module() -> None:
    module = type(sys)("fake_plugins")

    class Named(_Base):
        name = "named"

    class Unnamed(_Base):
        pass

    for cls in (Named, Unnamed):
        cls.__module__ = "fake_plugins"
        setattr(module, cls.__name__, cls)
    assert subclasses_named(_Base)(module) == [("named", Named)]


def test_lookup_names_the_known_ones() -> None:
    assert lookup("family", {"a": 1}, "a") == 1
    with pytest.raises(ConfigError, match=r"unknown family 'b'; known: a, c"):
        lookup("family", {"a": 1, "c": 2}, "b")
    with pytest.raises(ConfigError, match=r"known: none"):
        lookup("family", {}, "b")
