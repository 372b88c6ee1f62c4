"""Shared fixtures: a generated fake GTZAN folder, the real copy when one is configured, and
``make_config`` (a benchmark config from :data:`helpers.BASE_CONFIG` with keys replaced).

``fake_gtzan`` is built once per session and shared: tests that modify files must copy it first
(``shutil.copytree(fake_gtzan, tmp_path / "g")``) or build their own with
:func:`fake_gtzan.make_fake_gtzan`.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from fake_gtzan import make_fake_gtzan
from helpers import REPORT_CONFIG, ConfigMaker, noisy_copy

from benchmark.execution.local import plan_and_run
from benchmark.execution.plan import RunOptions

#: fails a whole-suite run in which a registered family or feature set never ran
pytest_plugins = ["registry_coverage", "pytester"]

#: MLflow's variables as the session found them
_MLFLOW_ENV = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}


@pytest.fixture(autouse=True)
def _mlflow_env_as_found():
    """Put MLflow's variables back after each test. ``mlflow.set_tracking_uri`` (serving,
    evaluate) exports ``MLFLOW_TRACKING_URI``, which is also ``--tracking-uri``'s default: left
    set, it sent a later test's ``genrebench run`` to another test's store."""
    yield
    for key, value in _MLFLOW_ENV.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def fake_gtzan(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A complete fake Kaggle-layout folder: 10 genres x 8 tracks, both CSVs, images, artist
    index and fault-filtered lists (no audio). Treat it as read-only."""
    return make_fake_gtzan(tmp_path_factory.mktemp("fake_gtzan") / "gtzan")


@pytest.fixture(scope="session")
def partial_audio_gtzan(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A partial copy of the audio, like the shared one (115 of 1000): the fake folder's CSVs,
    artist index and fault-filtered lists for all 80 tracks, 1-s clips for 3 tracks of each
    genre only (30), no images. Treat it as read-only."""
    root = make_fake_gtzan(
        tmp_path_factory.mktemp("partial_audio") / "gtzan", with_audio=True, with_images=False
    )
    for clip in (root / "genres_original").rglob("*.wav"):
        if int(clip.stem.split(".")[1]) >= 3:
            clip.unlink()
    return root


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


@pytest.fixture(scope="session")
def make_config(tmp_path_factory: pytest.TempPathFactory) -> ConfigMaker:
    """``make_config(**overrides)``: a loaded config, the small base with top-level keys
    replaced (``None`` leaves one out); ``make_config.file(**overrides)``: its YAML path."""
    return ConfigMaker(tmp_path_factory)


@pytest.fixture(scope="session")
def report_bench(
    fake_gtzan: Path, tmp_path_factory: pytest.TempPathFactory, make_config: ConfigMaker
) -> Path:
    """One small benchmark's results folder, MLflow tracking on, run once per session (the
    report's and the browser's tests read it): tuned on a noisier copy of the fake folder so
    accuracies and intervals are not all 1. Treat it as read-only."""
    tmp = tmp_path_factory.mktemp("report-run")
    data = noisy_copy(fake_gtzan, tmp / "gtzan")
    result = plan_and_run(
        make_config(**REPORT_CONFIG), RunOptions(data_dir=str(data), results_root=tmp / "results")
    )
    assert set(result.results["status"]) == {"done"}
    return result.results_dir
