"""Shared fixtures: a generated fake GTZAN folder, and the real copy when one is configured.

``fake_gtzan`` is built once per session and shared: tests that modify files must copy it first
(``shutil.copytree(fake_gtzan, tmp_path / "g")``) or build their own with
:func:`fake_gtzan.make_fake_gtzan`.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from fake_gtzan import make_fake_gtzan


@pytest.fixture(scope="session")
def fake_gtzan(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A complete fake Kaggle-layout folder: 10 genres x 8 tracks, both CSVs, images, artist
    index and fault-filtered lists (no audio). Treat it as read-only."""
    return make_fake_gtzan(tmp_path_factory.mktemp("fake_gtzan") / "gtzan")


@pytest.fixture(scope="session")
def real_gtzan() -> Path:
    """The real Kaggle-layout copy named by ``$GENREBENCH_DATA``; skips when it is not set or
    holds no features_30_sec.csv. Use with ``@pytest.mark.integration``."""
    data = os.environ.get("GENREBENCH_DATA")
    if not data:
        pytest.skip("GENREBENCH_DATA is not set (point it at a GTZAN folder for real-data tests)")
    root = Path(data).expanduser()
    if not (root / "features_30_sec.csv").is_file():
        pytest.skip(f"GENREBENCH_DATA={data} holds no features_30_sec.csv")
    return root
