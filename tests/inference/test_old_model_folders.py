"""Model folders saved before ``view`` was renamed ``input_kind``: a ``model.json`` (and its
ensemble member records) that says ``view``, and ensemble members pickled with a ``view``
attribute, still load and predict as a folder saved now. The model reads ``logmel``'s image rows,
so a loader that overlooked the old key would give it the (default) tabular rows and fail."""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("librosa")
import joblib  # noqa: E402
import soundfile as sf  # noqa: E402
from fake_gtzan import genre_tone  # noqa: E402
from helpers import save_unit_model  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import FunctionTransformer, StandardScaler  # noqa: E402

from benchmark.data import Dataset  # noqa: E402
from benchmark.ensembles import EnsembleMember, EnsembleModel, TopKVote  # noqa: E402
from benchmark.features import get_feature_set  # noqa: E402
from benchmark.inference.pipeline import PredictPlan  # noqa: E402
from benchmark.inference.predict import predict_file  # noqa: E402
from benchmark.inference.saved_model import load_model, save_model  # noqa: E402

GENRES = ("blues", "country", "jazz", "rock")
#: small log-mel images of 6-s clips (16 mels x 65 frames): quick to extract and to fit
LOGMEL = {"seconds": 6, "n_mels": 16, "hop_length": 2048, "n_jobs": 1}


def flat(X: np.ndarray) -> np.ndarray:
    """Image rows ``(n, H, W)`` as ``(n, H * W)`` for a scikit-learn classifier."""
    return np.asarray(X).reshape(len(X), -1)


def _old(record: dict[str, Any]) -> dict[str, Any]:
    """``record`` as written before the rename: ``view`` instead of ``input_kind``."""
    out = {k: v for k, v in record.items() if k != "input_kind"}
    out["view"] = record["input_kind"]
    return out


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """An image model on logmel, an ensemble of it and the tabular unit model, saved now; a song."""
    tmp = tmp_path_factory.mktemp("old_folders")
    unit = save_unit_model(tmp, GENRES)
    ds: Dataset = unit.ds
    fm = get_feature_set("logmel", **LOGMEL).load(ds, "image", tmp / "cache")
    y = ds.labels_of(fm.row_track)
    image = make_pipeline(
        FunctionTransformer(flat), StandardScaler(), LogisticRegression(C=0.1, max_iter=2000)
    ).fit(fm.X, y)
    meta = {"feature_set": "logmel", "feature_params": LOGMEL, "input_kind": "image"}
    single = save_model(tmp / "single", image, {**meta, "classes": ds.classes})
    members = [
        EnsembleMember("logmel", "logreg", LOGMEL, "image", {}, 0.5, image),
        EnsembleMember("librosa_30s", "logreg", {"seconds": 6}, "tabular", {}, 0.5, unit.model),
    ]
    P = np.zeros((2, len(y), len(ds.classes)))
    P[0][:, image.classes_] = image.predict_proba(fm.X)
    P[1][:, unit.model.classes_] = unit.model.predict_proba(unit.fm.X)
    method = TopKVote(k=2).fit(P, y, np.arange(len(y)))
    ensemble = save_model(
        tmp / "ensemble",
        EnsembleModel(method, members, [0, 1], 2),
        {
            "kind": "ensemble",
            "feature_set": "ensemble",
            "classes": ds.classes,
            "members": [m.describe() for m in members],
        },
    )
    song = tmp / "jazz_like.wav"
    sf.write(song, genre_tone(GENRES, "jazz", 6.0, 99), 22050)
    return {"single": single, "ensemble": ensemble, "song": song, "tmp": tmp}


def _rewritten(folder: Path, to: Path, model: Any = None) -> Path:
    """A copy of ``folder`` whose ``model.json`` says ``view`` (its members too), and whose
    ``model.joblib`` is ``model`` when given."""
    to.mkdir()
    meta = json.loads((folder / "model.json").read_text())
    meta = _old(meta) if "input_kind" in meta else meta
    if "members" in meta:
        meta["members"] = [_old(m) for m in meta["members"]]
    (to / "model.json").write_text(json.dumps(meta, indent=2))
    if model is None:
        (to / "model.joblib").write_bytes((folder / "model.joblib").read_bytes())
    else:
        joblib.dump(model, to / "model.joblib")
    return to


def _pickled_before_the_rename(member: EnsembleMember) -> EnsembleMember:
    """``member`` as a member object of before the rename: a ``view`` attribute."""
    old = object.__new__(EnsembleMember)
    old.__dict__.update(_old(dict(member.__dict__)))
    return old


def test_a_saved_model_json_says_input_kind(models: dict) -> None:
    meta = json.loads((models["single"] / "model.json").read_text())
    assert meta["input_kind"] == "image" and "view" not in meta
    listed = json.loads((models["ensemble"] / "model.json").read_text())["members"]
    assert [m["input_kind"] for m in listed] == ["image", "tabular"]
    assert not any("view" in m for m in listed)


def test_a_model_json_with_the_old_view_key_loads_and_predicts(models: dict) -> None:
    now = load_model(models["single"])
    old = load_model(_rewritten(models["single"], models["tmp"] / "old_single"))
    assert "view" in old.meta and "input_kind" not in old.meta
    assert old.input_kind == "image"
    assert [s.input_kind for s in PredictPlan.of(old).specs] == ["image"]
    want, got = predict_file(now, models["song"]), predict_file(old, models["song"])
    np.testing.assert_array_equal(got.proba, want.proba)


def test_an_old_ensemble_folder_loads_and_predicts(models: dict) -> None:
    """Member records with ``view`` and members pickled with a ``view`` attribute."""
    now = load_model(models["ensemble"])
    est = now.estimator
    old_members = [_pickled_before_the_rename(m) for m in est.members]
    assert all("view" in m.__dict__ and "input_kind" not in m.__dict__ for m in old_members)
    old_model = EnsembleModel(est.method, old_members, est.member_index, est.n_members)
    folder = _rewritten(models["ensemble"], models["tmp"] / "old_ensemble", old_model)
    old = load_model(folder)
    assert [m.input_kind for m in old.estimator.members] == ["image", "tabular"]
    assert [s.input_kind for s in PredictPlan.of(old).specs] == ["image", "tabular"]
    want, got = predict_file(now, models["song"]), predict_file(old, models["song"])
    np.testing.assert_array_equal(got.proba, want.proba)


def test_an_ensemble_member_pickled_with_the_old_attribute_unpickles(models: dict) -> None:
    member = load_model(models["ensemble"]).estimator.members[0]
    back = pickle.loads(pickle.dumps(_pickled_before_the_rename(member)))
    assert back.input_kind == "image" and not hasattr(back, "view")
    assert back.describe() == member.describe()
    assert back.describe()["input_kind"] == "image"


def test_save_model_writes_a_callers_old_view_key_as_input_kind(models: dict) -> None:
    now = load_model(models["single"])
    meta = _old({k: v for k, v in now.meta.items() if k not in ("saved_at", "versions")})
    folder = save_model(models["tmp"] / "resaved", now.estimator, meta)
    written = json.loads((folder / "model.json").read_text())
    assert written["input_kind"] == "image" and "view" not in written
