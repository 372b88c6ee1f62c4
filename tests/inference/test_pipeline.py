"""predict as a pipeline (:mod:`benchmark.inference.pipeline`): the same numbers as predicting
file by file (in this process and in a pool), each distinct feature set computed once per file,
one ``predict_proba`` per estimator and batch, rows in input order, bad files and dying workers
one error row each; and (integration) an ensemble on the shared FLAC clips."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("librosa")
import soundfile as sf  # noqa: E402
from click.testing import CliRunner  # noqa: E402
from fake_gtzan import genre_tone  # noqa: E402
from fault_injection import dying_extract, dying_start, hanging_extract  # noqa: E402
from helpers import save_unit_model  # noqa: E402
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from benchmark.audio.band_limit import band_warning, measure_file  # noqa: E402
from benchmark.audio.decoding import load_clip, song_windows  # noqa: E402
from benchmark.cli import main  # noqa: E402
from benchmark.ensembles import EnsembleMember, EnsembleModel, Stacking  # noqa: E402
from benchmark.errors import GenrebenchError  # noqa: E402
from benchmark.inference.model_inputs import model_inputs  # noqa: E402
from benchmark.inference.pipeline import FilePrediction, PredictPlan, run_pipeline  # noqa: E402
from benchmark.inference.pool import ExtractionTimeout, WorkerDiedError  # noqa: E402
from benchmark.inference.predict import predict_file, predict_files  # noqa: E402
from benchmark.inference.saved_model import SavedModel, load_model, save_model  # noqa: E402

SR = 22050
GENRES = ("blues", "country", "jazz", "rock")


# --- the reference: the per-file computation predict had before the pipeline --------------------
def reference_predict(model: SavedModel, path: str, windows: bool = False) -> FilePrediction:
    """One file, each input extracting its own features, one predict_proba per input and clip."""
    inputs = model_inputs(model)
    n = len(model.classes)
    decoded: dict[tuple[int, float], list[Any]] = {}
    for i in inputs:
        key = (i.fset.sample_rate, i.fset.seconds)
        if key not in decoded:
            decoded[key] = song_windows(path, *key) if windows else [load_clip(path, *key)]
    n_clips = min(len(c) for c in decoded.values())
    probas = []
    for k in range(n_clips):
        per_input = []
        for i in inputs:
            rows = i.fset.clip_rows(decoded[(i.fset.sample_rate, i.fset.seconds)][k], i.input_kind)
            p = np.zeros((len(rows), n))
            p[:, i.estimator.classes_] = i.estimator.predict_proba(rows)
            per_input.append(p.mean(axis=0))
        if model.is_ensemble:
            probas.append(model.estimator.combine([p[None] for p in per_input])[0])
        else:
            probas.append(per_input[0])
    widest = max(decoded)
    audio = np.concatenate([c.audio for c in decoded[widest][:n_clips]])
    band = measure_file(path, audio, widest[0])
    clips = next(iter(decoded.values()))[:n_clips]
    return FilePrediction(
        file=path,
        proba=np.mean(probas, axis=0),
        classes=model.classes,
        windows=n_clips,
        seconds=float(sum(c.seconds for c in clips)),
        window_top=[model.classes[int(np.argmax(p))] for p in probas] if windows else [],
        band=band,
        warning=band_warning(band, model.training_band, [i.fset.band_limit_hz for i in inputs]),
    )


def assert_same(got: FilePrediction, want: FilePrediction) -> None:
    assert got.file == want.file
    assert got.top(1)[0][0] == want.top(1)[0][0]
    np.testing.assert_allclose(got.proba, want.proba, rtol=0, atol=1e-6)
    assert (got.windows, got.window_top, got.band, got.warning) == (
        want.windows,
        want.window_top,
        want.band,
        want.warning,
    )
    assert got.seconds == pytest.approx(want.seconds)


def stacked(members: list[EnsembleMember], X: np.ndarray, y: np.ndarray, n: int) -> Stacking:
    """A stacking method fitted on the members' (in-sample) probabilities of ``X``."""
    P = np.zeros((len(members), len(X), n))
    for k, m in enumerate(members):
        P[k][:, m.estimator.classes_] = m.estimator.predict_proba(X)
    return Stacking(grid=[1.0]).fit(P, y, np.arange(len(y)) % 2)


def save_ensemble(folder: Path, members: list[EnsembleMember], method: Any, classes: list[str]):
    ensemble = EnsembleModel(method, members, list(range(len(members))), len(members))
    meta = {
        "kind": "ensemble",
        "feature_set": "ensemble",
        "classes": classes,
        "members": [m.describe() for m in members],
        "pair": {"feature_set": "ensemble", "family": "stacking"},
    }
    return save_model(folder, ensemble, meta)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The unit model, and a stacking ensemble of three members: two sharing librosa_30s (6 s)
    features, one reading csv_3s (librosa_3s segments of the first 30 s); plus songs."""
    tmp = tmp_path_factory.mktemp("pipeline")
    unit = save_unit_model(tmp, GENRES)
    X, y = unit.fm.X, unit.ds.labels_of(unit.fm.row_track)
    own = {"seconds": 6}
    lda = make_pipeline(StandardScaler(), LinearDiscriminantAnalysis()).fit(X, y)
    seg = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000)).fit(X, y)
    members = [
        EnsembleMember("librosa_30s", "logreg", own, "tabular", {}, 0.4, unit.model),
        EnsembleMember("librosa_30s", "lda", own, "tabular", {}, 0.3, lda),
        EnsembleMember("csv_3s", "logreg", {}, "tabular", {}, 0.3, seg),
    ]
    classes = unit.ds.classes
    ens_dir = save_ensemble(
        tmp / "ensemble", members, stacked(members, X, y, len(classes)), classes
    )
    songs = tmp / "songs"
    songs.mkdir()
    sf.write(songs / "jazz_like.wav", genre_tone(GENRES, "jazz", 6.0, 99), SR)
    sf.write(songs / "rock_like.flac", genre_tone(GENRES, "rock", 7.0, 98), SR)
    sf.write(songs / "long_blues.wav", genre_tone(GENRES, "blues", 15.0, 97), SR)
    sf.write(songs / "boom.wav", genre_tone(GENRES, "country", 6.0, 96), SR)
    (songs / "text.wav").write_text("not audio at all\n" * 10)
    return {"unit": unit.dir, "ensemble": ens_dir, "songs": songs}


def _songs(setup: dict, *names: str) -> list[str]:
    return [str(setup["songs"] / n) for n in names]


def test_the_ensembles_plan_computes_a_shared_feature_set_once(setup: dict) -> None:
    model = load_model(setup["ensemble"])
    plan = PredictPlan.of(model)
    assert len(model_inputs(model)) == 3 and plan.input_spec == (0, 0, 1)
    assert [s.name for s in plan.specs] == ["librosa_30s", "librosa_3s"]


@pytest.mark.parametrize("windows", [False, True])
def test_pipeline_gives_the_per_file_numbers(setup: dict, windows: bool) -> None:
    """The same top genre and probabilities (1e-6) as the file-by-file reference, for the
    pair and the ensemble, in this process (batched) and in a pool of two."""
    songs = _songs(setup, "jazz_like.wav", "rock_like.flac", "long_blues.wav")
    for folder in ("unit", "ensemble"):
        model = load_model(setup[folder])
        want = [reference_predict(model, s, windows) for s in songs]
        for jobs in (1, 2):
            got = list(predict_files(model, songs, windows=windows, jobs=jobs))
            assert [f for f, _ in got] == songs
            for (_, g), w in zip(got, want, strict=True):
                assert isinstance(g, FilePrediction), g
                assert_same(g, w)
        assert_same(predict_file(model, songs[0], windows=windows), want[0])
    if windows:  # 6-s windows of a 15-s song: 3 votes for the pair
        assert want[2].windows == 1  # the ensemble's csv_3s member decodes 30 s windows


class Counting:
    """An estimator's stand-in that counts predict_proba calls and their rows."""

    def __init__(self, estimator: Any) -> None:
        self.estimator, self.classes_, self.calls = estimator, estimator.classes_, []

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        self.calls.append(len(X))
        return self.estimator.predict_proba(X)


def test_one_predict_proba_per_member_and_batch_and_one_extraction_per_feature_set(
    setup: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    from benchmark.features.librosa_features import Librosa3s, Librosa30s

    model = load_model(setup["ensemble"])
    for m in model.estimator.members:
        m.estimator = Counting(m.estimator)
    extracted: list[str] = []
    for cls in (Librosa30s, Librosa3s):
        original = cls._clip_rows

        def counted(self: Any, clip: Any, input_kind: str, _orig: Any = original) -> np.ndarray:
            extracted.append(self.name)
            return _orig(self, clip, input_kind)

        monkeypatch.setattr(cls, "_clip_rows", counted)
    songs = _songs(setup, "jazz_like.wav", "text.wav", "rock_like.flac")
    rows = list(run_pipeline(model, songs, jobs=1, batch_size=8, max_wait_s=60))
    assert [f for f, _ in rows] == songs and isinstance(rows[1][1], GenrebenchError)
    # two good files: each feature set once per file, though two members read librosa_30s
    assert sorted(extracted) == ["librosa_30s"] * 2 + ["librosa_3s"] * 2
    calls = [m.estimator.calls for m in model.estimator.members]
    assert calls[0] == calls[1] == [2]  # one call on both files' rows
    assert len(calls[2]) == 1 and calls[2][0] > 2  # the segments of both files, at once
    # batches of one: a call per file, and the same numbers
    for m in model.estimator.members:
        m.estimator.calls.clear()
    again = list(run_pipeline(model, songs, jobs=1, batch_size=1))
    assert [m.estimator.calls for m in model.estimator.members][0] == [1, 1]
    for (_, a), (_, b) in zip(rows[::2], again[::2], strict=True):
        assert_same(a, b)


@pytest.mark.parametrize("how", ["exit", "segfault"])
def test_a_dying_worker_costs_only_its_file(setup: dict, how: str) -> None:
    """A worker that dies on boom.wav (as a crashing decoder would) gives that file an error
    row; the pool is rebuilt, the other files (good and bad) get their own rows, in order."""
    model = load_model(setup["unit"])
    names = ["jazz_like.wav", "boom.wav", "text.wav", "rock_like.flac", "missing.wav"]
    songs = _songs(setup, *names)
    extract = functools.partial(dying_extract, "boom.wav", how)
    rows = list(run_pipeline(model, songs, jobs=2, extract=extract))
    assert [f for f, _ in rows] == songs
    by = dict(rows)
    died = by[songs[1]]
    assert isinstance(died, WorkerDiedError) and "boom.wav" in str(died) and "died" in str(died)
    assert "not a readable audio file" in str(by[songs[2]])
    assert "no such file" in str(by[songs[4]])
    for i in (0, 3):
        assert isinstance(by[songs[i]], FilePrediction)
        assert_same(by[songs[i]], reference_predict(model, songs[i]))


def test_a_file_that_hangs_its_worker_costs_only_its_file(setup: dict) -> None:
    """A worker stuck on boom.wav past the time limit is stopped: that file gets an
    ExtractionTimeout row, the files in flight with it are retried and predicted, in order."""
    model = load_model(setup["unit"])
    names = ["jazz_like.wav", "boom.wav", "rock_like.flac", "text.wav"]
    songs = _songs(setup, *names)
    extract = functools.partial(hanging_extract, "boom.wav")
    t0 = time.monotonic()
    rows = list(run_pipeline(model, songs, jobs=2, extract=extract, file_timeout_s=3.0))
    assert time.monotonic() - t0 < 60  # two timeouts (in flight, then alone) and restarts
    assert [f for f, _ in rows] == songs
    by = dict(rows)
    assert isinstance(by[songs[1]], ExtractionTimeout) and "longer than 3 s" in str(by[songs[1]])
    assert "not a readable audio file" in str(by[songs[3]])
    for i in (0, 2):
        assert isinstance(by[songs[i]], FilePrediction)
        assert_same(by[songs[i]], reference_predict(model, songs[i]))


def test_a_pool_whose_workers_never_start_falls_back_to_this_process(
    setup: dict, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Workers that die as they start (a broken environment, not a file) would blame every file
    in turn: the pipeline notices that the pool cannot run even a no-op and extracts here."""
    from benchmark.inference import pool

    monkeypatch.setattr(pool, "_worker_init", dying_start)
    model = load_model(setup["unit"])
    songs = _songs(setup, "jazz_like.wav", "text.wav", "rock_like.flac")
    with caplog.at_level("WARNING", logger="benchmark.inference.pool"):
        rows = list(run_pipeline(model, songs, jobs=2))
    assert [f for f, _ in rows] == songs and "do not start" in caplog.text
    assert "not a readable audio file" in str(rows[1][1])
    for (_, got), song in zip(rows[::2], songs[::2], strict=True):
        assert_same(got, reference_predict(model, song))


def test_cli_jobs_two_matches_jobs_one_and_streams_in_order(setup: dict) -> None:
    songs = _songs(setup, "rock_like.flac", "text.wav", "jazz_like.wav")
    docs = []
    for jobs in ("1", "2"):
        res = CliRunner().invoke(
            main,
            ["predict", *songs, "--model", str(setup["ensemble"]), "--json", "--jobs", jobs],
        )
        assert res.exit_code == 2, res.output  # text.wav is not audio
        docs.append(json.loads(res.stdout)["predictions"])
    assert docs[0] == docs[1]
    assert [p["file"] for p in docs[0]] == songs and "error" in docs[0][1]
    res = CliRunner().invoke(main, ["predict", songs[0], "--jobs", "0"])
    assert res.exit_code == 2 and "--jobs" in res.output


# --- the model loading while the first files are extracted --------------------------------------
def extract_in_pid(specs: Any, path: str, windows: bool) -> Any:
    """:func:`benchmark.inference.pipeline.extract_file` that also says which process ran it
    (as the file's error row: a pool sends it back whole)."""
    from benchmark.inference.pipeline import ExtractionError

    return ExtractionError(f"pid {os.getpid()}")


def _still_loading(folder: Path, for_s: float | None = None) -> tuple[SavedModel, threading.Event]:
    """The model of ``folder`` as ``load_model(background=True)`` gives it, its load (once
    started) held until the test sets the event (or for ``for_s`` seconds)."""
    done = load_model(folder)
    release = threading.Event()

    def loader() -> Any:
        release.wait(for_s)
        return done.estimator

    return SavedModel(done.path, None, done.meta, loader=loader), release


def test_a_background_load_gives_the_same_model_and_answers_meta_at_once(setup: dict) -> None:
    for folder in ("unit", "ensemble"):
        now, later = load_model(setup[folder]), load_model(setup[folder], background=True)
        assert later.classes == now.classes and later.describe() == now.describe()
        assert PredictPlan.of(later) == PredictPlan.of(now)  # from model.json alone
        song = _songs(setup, "jazz_like.wav")
        assert_same(predict_file(later, song[0]), reference_predict(now, song[0]))
        assert not later.loading
    model, release = _still_loading(setup["ensemble"])
    model.start_loading()
    assert model.loading and len(PredictPlan.of(model).specs) == 2  # without the estimator
    release.set()
    assert len(model_inputs(model)) == 3 and not model.loading


def test_one_file_is_extracted_by_a_worker_while_the_model_loads(setup: dict) -> None:
    """One file and two cores: while the estimator unpickles, a pool worker extracts the file
    (here: says its pid); once loaded, one file stays in this process, as before."""
    song = _songs(setup, "jazz_like.wav")
    model, _ = _still_loading(setup["unit"], for_s=0.5)
    ((_, row),) = list(run_pipeline(model, song, jobs=2, extract=extract_in_pid))
    assert str(row) != f"pid {os.getpid()}" and str(row).startswith("pid ")
    ((_, row),) = list(run_pipeline(model, song, jobs=2, extract=extract_in_pid))
    assert str(row) == f"pid {os.getpid()}"  # loaded: no pool for one file
    ((_, got),) = list(run_pipeline(_still_loading(setup["unit"], for_s=0.3)[0], song, jobs=2))
    assert isinstance(got, FilePrediction)
    assert_same(got, reference_predict(load_model(setup["unit"]), song[0]))


def test_a_lone_file_forks_its_worker_before_the_model_starts_loading(setup: dict) -> None:
    """In a fresh process (no thread but the main one): the lone file's worker is forked (it
    has this process's memory), and the model starts loading only then; with a thread running,
    the worker comes from the fork server instead (a fork would copy the thread's state)."""
    script = f"""
import os, sys, threading
sys.path.insert(0, {str(Path(__file__).parents[1])!r})
from fault_injection import marked_extract
from benchmark.inference import pipeline as pp
from benchmark.inference.saved_model import load_model

pp._test_mark = "inherited"
for busy in (False, True):
    model = load_model({str(setup["unit"])!r}, background=True)
    assert model.loading and (busy or threading.active_count() == 1)
    if busy:
        stop = threading.Event()
        threading.Thread(target=stop.wait, daemon=True).start()
    ((_, row),) = list(pp.run_pipeline(model, [{_songs(setup, "jazz_like.wav")[0]!r}], jobs=2,
                                        extract=marked_extract))
    assert not model.loading and hasattr(model.estimator, "predict_proba")
    mark, pid = str(row).split()
    print(busy, mark, pid != f"pid={{os.getpid()}}")
    if busy:
        stop.set()
"""
    res = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=False
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.split("\n")[:2] == ["False mark=inherited True", "True mark=None True"]


def test_a_model_that_fails_to_load_in_the_background_says_so(setup: dict, tmp_path: Path) -> None:
    """A damaged model.joblib: the error comes with the first batch (never a file's row), and
    ``predict`` exits with it; model.json's members must be the estimator's."""
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(setup["unit"], broken)
    (broken / "model.joblib").write_bytes(b"not a pickle")
    model = load_model(broken, background=True)
    with pytest.raises(GenrebenchError, match="cannot be loaded"):
        list(predict_files(model, _songs(setup, "jazz_like.wav", "text.wav"), jobs=2))
    res = CliRunner().invoke(
        main, ["predict", *_songs(setup, "jazz_like.wav"), "--model", str(broken)]
    )
    assert res.exit_code != 0 and "cannot be loaded" in res.output
    lying = tmp_path / "lying"
    shutil.copytree(setup["ensemble"], lying)
    meta = json.loads((lying / "model.json").read_text())
    meta["members"][2]["feature_set"] = "librosa_30s"  # the estimator's third reads csv_3s
    (lying / "model.json").write_text(json.dumps(meta))
    with pytest.raises(GenrebenchError, match="members listed in model.json are not those"):
        list(predict_files(load_model(lying, background=True), _songs(setup, "jazz_like.wav")))


# --- the shared FLAC clips ----------------------------------------------------------------------
@pytest.mark.integration
def test_an_ensemble_on_shared_clips_matches_the_per_file_path(
    real_gtzan: Path, tmp_path: Path
) -> None:
    """Two members trained on Kaggle's csv_30s rows (so sharing the librosa_30s features
    computed from audio) and combined by stacking: the pipeline in a pool of two gives the
    per-file numbers on four shared clips."""
    from threadpoolctl import threadpool_limits

    from benchmark.data import Dataset

    ds = Dataset.open(real_gtzan)
    csv = ds.features_csv(segmented=False)
    audio = ds.tracks.dropna(subset=["audio_path"])
    clips = audio.groupby("genre").head(1)["audio_path"].astype(str).tolist()[:4]
    if len(clips) < 2:
        pytest.skip("the shared copy holds too few clips")
    X = csv[ds.manifest.csv_feature_columns].to_numpy()
    y = ds.labels_of(csv["track_id"])
    with threadpool_limits(1):
        logreg = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000)).fit(X, y)
        lda = make_pipeline(StandardScaler(), LinearDiscriminantAnalysis()).fit(X, y)
    members = [
        EnsembleMember("csv_30s", "logreg", {}, "tabular", {}, 0.5, logreg),
        EnsembleMember("csv_30s", "lda", {}, "tabular", {}, 0.5, lda),
    ]
    folder = save_ensemble(
        tmp_path / "m", members, stacked(members, X, y, len(ds.classes)), ds.classes
    )
    model = load_model(folder)
    plan = PredictPlan.of(model)
    assert len(plan.specs) == 1  # both members read the same features: computed once
    got = list(predict_files(model, clips, jobs=2))
    assert [f for f, _ in got] == clips
    for (_, g), clip in zip(got, clips, strict=True):
        assert isinstance(g, FilePrediction), g
        assert_same(g, reference_predict(model, clip))
