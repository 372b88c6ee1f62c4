"""Small builders the test modules share (pytest puts ``tests/`` on ``sys.path``): benchmark
configs written as YAML, one (pair, fold) job on a generated problem, a one-machine run, a
noisier copy of the fake GTZAN folder, a saved model, and audio clips
on disk (:func:`write_clip`, :func:`write_genre_clip`, :func:`write_genre_folder`).

Configs come from the ``make_config`` fixture (``tests/conftest.py``), which calls
:func:`write_config`: the small base below with top-level keys replaced, e.g.
``make_config(name="b", n_jobs=2, budget=0.001)``, or one extending a shipped config,
``make_config(name="mine", extends="smoke", n_trials=1)``.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
import pytest
import yaml

from benchmark.config import BenchmarkConfig, load_config
from benchmark.execution.cost import CostModel, FitCost
from benchmark.execution.local import RunResult, plan_and_run
from benchmark.execution.plan import RunOptions
from benchmark.results import PairKey
from benchmark.testing import make_tabular_problem
from benchmark.tuning.job import FoldJob
from benchmark.tuning.search_space import load_search_space

#: the config every test starts from: two quick families on the 30 s CSV, 3 artist folds
BASE_CONFIG: dict[str, Any] = {
    "name": "t",
    "seed": 1,
    "feature_sets": ["csv_30s"],
    "families": ["logreg", "lda"],
    "protocols": {"artist_kfold": {"n_folds": 3}},
    "inner_folds": 2,
    "n_trials": 2,
    "n_jobs": 1,
    "baseline": {"feature_set": "csv_30s", "family": "lda"},
}


#: a one-pair benchmark on a test split: ``make_config(**JOURNAL)``
JOURNAL: dict[str, Any] = {
    "name": "j",
    "families": ["logreg"],
    "protocols": {"fault_filtered": {}},
    "n_trials": 3,
    "baseline": {"feature_set": "csv_30s", "family": "logreg"},
}


#: the report's benchmark (``report_bench``): three families, a k-fold and a test split
REPORT_CONFIG: dict[str, Any] = {
    "name": "rep",
    "seed": 5,
    "families": ["logreg", "lda", "dummy"],
    "protocols": {"artist_kfold": {"n_folds": 3}, "fault_filtered": {}},
}


def config_dict(**overrides: Any) -> dict[str, Any]:
    """:data:`BASE_CONFIG` with top-level keys replaced (a key set to ``None`` is left out);
    a config that ``extends`` another (``extends="smoke"``) starts from that one instead."""
    raw = {**({} if "extends" in overrides else BASE_CONFIG), **overrides}
    return {k: v for k, v in raw.items() if v is not None}


def write_config(folder: Path, **overrides: Any) -> Path:
    """The config as ``<folder>/<name>.yaml`` (what ``--config`` and ``load_config`` take)."""
    raw = config_dict(**overrides)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{raw['name']}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


@dataclass
class ConfigMaker:
    """The ``make_config`` fixture: ``make_config(**overrides)`` writes a config to a fresh
    folder and loads it; ``make_config.file(**overrides)`` gives the YAML file's path instead."""

    factory: pytest.TempPathFactory
    written: list[Path] = field(default_factory=list)

    def file(self, **overrides: Any) -> Path:
        path = write_config(self.factory.mktemp("config"), **overrides)
        self.written.append(path)
        return path

    def __call__(self, **overrides: Any) -> BenchmarkConfig:
        return load_config(str(self.file(**overrides)))


def run_local(cfg: BenchmarkConfig, data: Path, results: Path, **kw: Any) -> RunResult:
    """``genrebench run`` in this process, without MLflow (``kw``: more :class:`RunOptions`)."""
    opts = RunOptions(data_dir=str(data), results_root=results, track=False, **kw)
    return plan_and_run(cfg, opts)


#: the classes of :func:`fold_job`'s problem
CLASSES = tuple(f"g{i}" for i in range(4))


def fold_job(
    tmp_path: Path,
    *,
    family: str = "logreg",
    segments: int = 1,
    n_trials: int = 4,
    name: str = "study",
) -> FoldJob:
    """60 tracks of a learnable 4-class problem; ``segments`` rows per track."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    X, y = make_tabular_problem(n_samples=60 * segments, n_features=6, n_classes=4, seed=1)
    order = np.argsort(y, kind="stable")  # rows of one track share a class
    X, y = X[order], y[order]
    per_class = np.bincount(y)
    ids = []
    for c, n in enumerate(per_class):
        ids += [f"g{c}.{i // segments:05d}" for i in range(n)]
    row_track = np.array(ids)
    tracks = np.unique(row_track)
    rng = np.random.default_rng(0)
    test = np.sort(rng.choice(tracks, size=len(tracks) // 4, replace=False))
    train = np.setdiff1d(tracks, test)
    perm = rng.permutation(train)
    inner = [(np.setdiff1d(train, part), part) for part in np.array_split(perm, 3)]
    return FoldJob(
        benchmark="t",
        pair=PairKey("synthetic", family, "holdout"),
        fold=0,
        X=X,
        row_track=row_track,
        y=y,
        classes=CLASSES,
        train_tracks=train,
        test_tracks=test,
        inner_splits=inner,
        space=load_search_space(family).to_dict(),
        storage_url=f"sqlite:///{tmp_path / 'optuna.db'}",
        study_name=name,
        n_trials=n_trials,
        timeout_s=None,
        seed=0,
        fail_fast=True,
    )


def pair_jobs(tmp_path: Path, folds, families) -> list[FoldJob]:
    """:func:`fold_job`'s job for families ``(name, n_trials)`` on ``folds``, fold by fold."""
    base = fold_job(tmp_path)
    return [
        replace(base, pair=PairKey("s", fam, "p"), fold=fold, n_trials=n)
        for fold in folds
        for fam, n in families
    ]


def cost_model(jobs, seconds_per_trial: float) -> CostModel:
    """A cost model in which every trial of ``jobs``' pairs takes ``seconds_per_trial``."""
    model = CostModel()
    for j in jobs:
        model.per_trial[(j.pair.feature_set, j.pair.family)] = seconds_per_trial
        model.fits[(j.pair.feature_set, j.pair.family)] = FitCost(0.0, 1)
    return model


def study_trials(job: FoldJob) -> list[optuna.trial.FrozenTrial]:
    """Every trial stored for ``job``'s study."""
    return optuna.load_study(study_name=job.study_name, storage=job.storage_url).get_trials()


def noisy_copy(src: Path, dest: Path, noise: float = 1.0, seed: int = 1) -> Path:
    """A copy of a fake GTZAN folder whose CSV features carry extra noise (harder to classify)."""
    shutil.copytree(src, dest)
    csv = dest / "features_30_sec.csv"
    df = pd.read_csv(csv)
    cols = [c for c in df.columns if c not in ("filename", "length", "label")]
    rng = np.random.default_rng(seed)
    df[cols] = df[cols] + rng.normal(size=(len(df), len(cols))) * df[cols].std().to_numpy() * noise
    df.to_csv(csv, index=False)
    return dest


#: the extra names of :func:`widened_copy`: quick's twelve families (each a copy of the real
#: family named) and feature-set and family names longer than the registry's longest
WIDE_FEATURE_SETS = ("embedding_musicnn_patch_max_pool",)
WIDE_FAMILIES = {
    "seed_mlp": "lda",
    "svm_linear": "logreg",
    "svm_poly": "lda",
    "svm_rbf": "logreg",
    "svm_sigmoid": "dummy",
    "qda": "lda",
    "knn": "dummy",
    "lightgbm": "logreg",
    "random_forest_balanced_subsample": "logreg",
}


def widened_copy(src: Path, dest: Path) -> Path:
    """A copy of the results folder ``src`` with many pairs under long names, for the page's
    layout tests: every single pair's rows (results, predictions, trials) are repeated under
    :data:`WIDE_FAMILIES` (a copy of the family named) and under each of :data:`WIDE_FEATURE_SETS`.
    The numbers are the real run's; only the names and how many there are change."""
    shutil.copytree(src, dest)
    for name in ("results.parquet", "predictions.parquet", "trials.parquet"):
        df = pd.read_parquet(dest / name)
        single = df[df["feature_set"] != "ensemble"]
        fam = [single]
        for alias, family in WIDE_FAMILIES.items():
            fam.append(single[single["family"] == family].assign(family=alias))
        pairs = pd.concat(fam, ignore_index=True)
        copies = [df] + [pairs.assign(feature_set=fs) for fs in WIDE_FEATURE_SETS]
        copies.append(pairs[pairs["family"].isin(list(WIDE_FAMILIES))])
        pd.concat(copies, ignore_index=True).to_parquet(dest / name, index=False)
    (dest / "leaderboard.html").unlink(missing_ok=True)
    return dest


@dataclass
class SavedUnitModel:
    """A logistic regression on librosa_30s features of fake tones, saved as a final model."""

    dir: Path
    ds: Any
    fm: Any
    model: Any


#: the sample rate of every generated clip (the fake folder's, and Kaggle's)
SR = 22050

#: the genres of the small saved model (:func:`save_unit_model`) and of the clips it is shown
UNIT_GENRES = ("blues", "country", "jazz", "rock")


def write_clip(
    path: Path,
    samples: np.ndarray,
    sr: int = SR,
    *,
    fmt: str | None = None,
    subtype: str | None = None,
) -> Path:
    """``samples`` written as an audio file at ``path`` (its folders made), with soundfile: the
    format from the suffix unless ``fmt`` (``"OGG"``), its default subtype unless ``subtype``."""
    import soundfile as sf

    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, samples, sr, format=fmt, subtype=subtype)
    return path


def write_genre_clip(
    path: Path,
    genre: str,
    seed: int,
    *,
    genres: Sequence[str] = UNIT_GENRES,
    seconds: float = 6.0,
    **kw: Any,
) -> Path:
    """A clip of ``genre``'s tone as the fake folder's tracks of ``genres`` sound
    (:func:`fake_gtzan.genre_tone`), written by :func:`write_clip` (``kw``: ``fmt``, ...)."""
    from fake_gtzan import genre_tone

    return write_clip(path, genre_tone(genres, genre, seconds, seed), **kw)


def write_genre_folder(root: Path, genres: Sequence[str], n_per_genre: int, seconds: float) -> Path:
    """A fake GTZAN folder of ``genres`` with ``n_per_genre`` clips of ``seconds`` each and the
    30 s CSV (no pictures, no 3 s CSV): what audio feature sets and saved models train on."""
    from fake_gtzan import make_fake_gtzan

    return make_fake_gtzan(
        root, genres=genres, n_per_genre=n_per_genre, with_audio=True, audio_seconds=seconds,
        with_images=False, with_csv_3s=False,
    )  # fmt: skip


def save_unit_model(tmp: Path, genres: tuple[str, ...]) -> SavedUnitModel:
    """Train and save the small real model that predict's and evaluate's tests score with:
    6-s clips (not 30) keep it fast; the parameter travels with the model."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from benchmark.data import Dataset, load_manifest
    from benchmark.features import get_feature_set
    from benchmark.inference.saved_model import save_model

    root = write_genre_folder(tmp / "gtzan", genres, n_per_genre=4, seconds=6.0)
    ds = Dataset(root, load_manifest("gtzan"))
    fm = get_feature_set("librosa_30s", seconds=6, n_jobs=1).load(ds, "tabular", tmp / "cache")
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    model.fit(fm.X, ds.labels_of(fm.row_track))
    meta = {
        "feature_set": "librosa_30s",
        "feature_params": {"seconds": 6, "n_jobs": 1},
        "classes": ds.classes,
        "pair": {"feature_set": "librosa_30s", "family": "logreg", "protocol": "fault_filtered"},
        "params": {"C": 1.0},
        "benchmark": "unit",
        "protocol_scores": {"fault_filtered": {"accuracy": 1.0}},
    }
    model_dir = save_model(tmp / "results" / "unit" / "final_model", model, meta)
    return SavedUnitModel(model_dir, ds, fm, model)


def loaded_on_import(modules: Sequence[str], libraries: Sequence[str]) -> list[str]:
    """Which of ``libraries`` a fresh interpreter has loaded once it imported ``modules``: what
    a light start-up (the CLI's, the inference pool's) must keep empty."""
    import subprocess
    import sys

    code = (
        f"import sys, {', '.join(modules)}; "
        f"print(' '.join(m for m in {tuple(libraries)!r} if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()
