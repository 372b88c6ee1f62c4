"""``genrebench predict``: the genre of your own songs, with a benchmark's saved model.

Prediction decodes the audio (first 30 s, or every 30 s window of the song with
``windows=True``), computes the model's feature sets on it
(:mod:`benchmark.inference.model_inputs`) and averages the class probabilities over segments
and windows. Each file's sample rate and effective bandwidth are measured and compared with the
training audio's (:mod:`benchmark.audio.band_limit`): a band-limited file (16 kHz, a low-passed
MP3) gets a warning. Files go through :mod:`benchmark.inference.pipeline` (extraction in a
process pool, each distinct feature set once per file, batch inference): ``predict``,
``evaluate`` and the served model share that one path.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from benchmark.errors import GenrebenchError
from benchmark.inference.model_inputs import model_inputs
from benchmark.inference.pipeline import (
    FilePrediction,
    PredictPlan,
    extract_features,
    predict_batch,
    run_pipeline,
)
from benchmark.inference.saved_model import ModelError, SavedModel

__all__ = ["audio_files_in", "predict_file", "predict_files", "write_predictions"]


def predict_file(
    model: SavedModel, path: str | os.PathLike[str], *, windows: bool = False
) -> FilePrediction:
    """Class probabilities of one audio file: its first 30 s, or with ``windows`` the mean
    over every 30 s window of the song. An ensemble's members each compute their features
    from the same decoded audio (decoded once per sample rate and length, each distinct feature
    set computed once) and are combined. Raises :class:`~benchmark.audio.decoding.AudioError`
    subclasses for files that cannot be used (one line each)."""
    plan = PredictPlan.of(model)
    features = extract_features(plan.specs, str(path), windows)
    return predict_batch(model, plan, model_inputs(model), [features], windows)[0]


def predict_files(
    model: SavedModel,
    paths: Sequence[str | os.PathLike[str]],
    *,
    windows: bool = False,
    jobs: int = 1,
) -> Iterator[tuple[str, FilePrediction | GenrebenchError]]:
    """``(file, prediction or its error)`` for every file, in the order given: the one path
    that ``predict``, ``evaluate`` and the served model share, so they cannot disagree. A file
    that cannot be used yields its error (one row), never stops the others. ``jobs``: processes
    extracting features (1: in this process); predictions come in batches
    (:mod:`benchmark.inference.pipeline`), the same numbers as :func:`predict_file` gives."""
    yield from run_pipeline(model, paths, windows=windows, jobs=jobs)


def audio_files_in(paths: Sequence[str]) -> list[str]:
    """The files to predict: each named file as given (a bad one becomes an error row), and
    every audio file under each named folder, recursively, sorted; hidden files are skipped."""
    from benchmark.data import AUDIO_EXTENSIONS

    out: list[str] = []
    for p in paths:
        if not p.strip():  # Path("") is the current folder: never walk it unasked
            raise ModelError("an empty path names no file: give audio files or a folder")
        path = Path(p)
        if not path.is_dir():
            out.append(p)
            continue
        found = [
            f
            for f in path.rglob("*")
            if f.is_file()
            and f.suffix.lower() in AUDIO_EXTENSIONS
            and not any(part.startswith(".") for part in f.relative_to(path).parts)
        ]
        if not found:
            raise ModelError(f"{path}: no audio files ({', '.join(AUDIO_EXTENSIONS)}) under it")
        out.extend(str(f) for f in sorted(found))
    return out


def write_predictions(
    path: Path, rows: Sequence[tuple[str, FilePrediction | Exception]], classes: Sequence[str]
) -> None:
    """One row per file: ``file, genre, probability, error, sample_rate_hz, bandwidth_hz,
    warning, proba_<class>…`` (CSV) or the same records as a JSON list; written atomically."""
    import pandas as pd

    records = []
    for file, result in rows:
        rec: dict[str, Any] = {"file": file, "genre": None, "probability": None, "error": None}
        rec.update(dict.fromkeys(("sample_rate_hz", "bandwidth_hz", "warning")))
        if isinstance(result, FilePrediction):
            genre, prob = result.top(1)[0]
            rec.update(genre=genre, probability=round(prob, 6), **result.band_fields())
            rec.update(
                {
                    f"proba_{c}": round(float(v), 6)
                    for c, v in zip(classes, result.proba, strict=True)
                }
            )
        else:
            rec["error"] = str(result)
            rec.update({f"proba_{c}": None for c in classes})
        records.append(rec)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=path.suffix + ".tmp")
    os.close(fd)
    try:
        if path.suffix.lower() == ".json":
            Path(tmp).write_text(json.dumps(records, indent=2))
        else:
            pd.DataFrame(records).to_csv(tmp, index=False)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
