"""Dataset manifests (``datasets/<name>.yaml``): what a dataset folder should hold, read and
checked at load so that a bad key fails naming the file, not later in a run."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from benchmark.errors import DataError
from benchmark.paths import manifests_dir


@dataclass(frozen=True)
class Manifest:
    """A dataset manifest (``datasets/<name>.yaml``): layout, classes, schema, download hints."""

    name: str
    #: the class labels in probability-column order; None (``classes: auto`` in the YAML): the
    #: class folders and CSV labels found in the data, sorted
    classes: list[str] | None
    expected_per_class: int | None
    files: dict[str, str]
    csv_meta_columns: list[str]
    csv_label_column: str
    csv_feature_columns: list[str]
    fault_filtered_counts: dict[str, int] = field(default_factory=dict)
    download: dict[str, Any] = field(default_factory=dict)
    known_faults: list[str] = field(default_factory=list)
    #: the sample rate the dataset's audio was recorded at, where declared (a model trained on
    #: its feature files alone knows no more of its audio: ``genrebench predict`` compares it)
    sample_rate: int | None = None

    @property
    def download_hint(self) -> str:
        return str(self.download.get("hint", "")).strip()


def _manifest_dict(name: str, seen: tuple[str, ...] = ()) -> tuple[dict[str, Any], Path]:
    """The YAML of manifest ``name``, over the one it ``extends`` (keys replace whole)."""
    path = manifests_dir() / f"{name}.yaml"
    if not path.exists():
        known = sorted(p.stem for p in manifests_dir().glob("*.yaml"))
        raise DataError(f"unknown dataset manifest {name!r}; known: {', '.join(known)}")
    if name in seen:
        raise DataError(f"{path}: manifests extend each other in a loop ({' -> '.join(seen)})")
    raw = yaml.safe_load(path.read_text()) or {}
    base = raw.pop("extends", None)
    if base is not None:
        raw = {**_manifest_dict(str(base), (*seen, name))[0], **raw}
    return raw, path


def load_manifest(name: str = "gtzan") -> Manifest:
    raw, path = _manifest_dict(name)
    fields = set(Manifest.__dataclass_fields__)
    extra = set(raw) - fields - {"description"}
    if extra:
        raise DataError(f"{path}: unknown keys {sorted(extra)}")
    raw.pop("description", None)
    if raw.get("classes") == "auto":
        raw["classes"] = None
    return Manifest(**raw)
