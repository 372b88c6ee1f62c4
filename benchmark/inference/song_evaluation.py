"""``genrebench evaluate``: how a saved model does on the user's own labelled songs.

The input is a folder laid out as ``<label>/<file>`` (audio files anywhere below each label's
folder, as :func:`benchmark.inference.predict.audio_files_in` finds them) or a CSV file with the
columns ``path`` and ``label`` (relative paths resolve against the CSV's folder). Labels are matched
to the model's classes ignoring case, after an optional mapping (``hip-hop=hiphop``); a label the
model lacks is listed and its files are skipped, never counted wrong.

Every other file goes through :func:`benchmark.inference.predict.predict_files`, the path
``predict`` and the served model take, so the three cannot disagree. A file that cannot be used is
one error row, counted apart, never wrong. The scored files give accuracy, balanced accuracy (the
mean recall over the classes among the labels), macro-F1 (averaged over those same classes: a class
the user did not label adds no zero), per-class recall and the confusion matrix, each score with a
percentile bootstrap interval over files (:func:`benchmark.stats.bootstrap.bootstrap_means`, seeded:
the same files and seed give the same intervals).

These are the user's files, not GTZAN's splits: the figures say how the model carries over to
that music, and nothing about the benchmark's protocols.
"""

from __future__ import annotations

import csv
import json
import math
import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.errors import GenrebenchError
from benchmark.inference.pipeline import FilePrediction
from benchmark.inference.predict import predict_files
from benchmark.inference.saved_model import SavedModel

__all__ = [
    "PROTOCOL_NOTE",
    "SongEvaluation",
    "SongEvaluationError",
    "LabelledFile",
    "Metric",
    "Metrics",
    "compute_metrics",
    "evaluate_songs",
    "parse_mapping",
    "read_labelled",
    "write_song_evaluation",
]

#: what the figures are, shown beside them on every output
PROTOCOL_NOTE = (
    "These figures are measured on the files given, with the labels given: not on GTZAN's "
    "splits or protocols. They say how the model carries over to this music; intervals are "
    "95 % percentile bootstrap intervals over the scored files."
)
ROW_STATUS = ("scored", "error", "skipped")


class SongEvaluationError(GenrebenchError):
    """The labelled input cannot be evaluated (unreadable, no known label, a bad mapping)."""


@dataclass(frozen=True)
class LabelledFile:
    """One file of the input and the label the user gave it."""

    path: str
    label: str


# --- the labelled input -------------------------------------------------------------------------
def parse_mapping(items: Iterable[str]) -> dict[str, str]:
    """``["hip-hop=hiphop", …]`` as ``{"hip-hop": "hiphop"}`` (keys compared ignoring case)."""
    out: dict[str, str] = {}
    for item in items:
        src, sep, dst = item.partition("=")
        if not sep or not src.strip() or not dst.strip():
            raise SongEvaluationError(f"--map {item!r}: write LABEL=CLASS, e.g. hip-hop=hiphop")
        key = src.strip().casefold()
        if key in out and out[key] != dst.strip():
            raise SongEvaluationError(f"--map maps {src.strip()!r} twice ({out[key]!r}, {dst!r})")
        out[key] = dst.strip()
    return out


def read_labelled(source: str | os.PathLike[str]) -> list[LabelledFile]:
    """The files of a ``<label>/<file>`` folder, or of a ``path,label`` CSV, in a stable order
    (folders: sorted by label, then path; CSV: its row order)."""
    src = Path(source)
    if src.is_dir():
        return _read_folder(src)
    if src.is_file() and src.suffix.lower() == ".csv":
        return _read_csv(src)
    if not src.exists():
        raise SongEvaluationError(f"{src}: no such folder or CSV file")
    raise SongEvaluationError(f"{src}: give a folder of <label>/<file> or a CSV of path,label")


def _read_folder(root: Path) -> list[LabelledFile]:
    from benchmark.inference.predict import audio_files_in
    from benchmark.inference.saved_model import ModelError

    labels = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    out: list[LabelledFile] = []
    for folder in labels:
        try:
            files = audio_files_in([str(folder)])
        except ModelError:  # a label folder without audio: nothing of it to score
            continue
        out.extend(LabelledFile(f, folder.name) for f in files)
    if not out:
        raise SongEvaluationError(
            f"{root}: no audio files in label folders; lay it out as {root}/<label>/<file> "
            "or give a CSV of path,label"
        )
    return out


def _read_csv(path: Path) -> list[LabelledFile]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            header = {(h or "").strip().lower(): h for h in reader.fieldnames or []}
            if "path" not in header or "label" not in header:
                raise SongEvaluationError(
                    f"{path}: needs the columns path and label, has {reader.fieldnames}"
                )
            rows = [(r[header["path"]] or "", r[header["label"]] or "") for r in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise SongEvaluationError(f"{path}: not a readable CSV ({exc})") from None
    out = []
    for line, (file, label) in enumerate(rows, start=2):
        if not file.strip() or not label.strip():
            raise SongEvaluationError(f"{path}:{line}: a row needs both a path and a label")
        p = Path(file.strip()).expanduser()
        out.append(LabelledFile(str(p if p.is_absolute() else path.parent / p), label.strip()))
    if not out:
        raise SongEvaluationError(f"{path}: no rows")
    return out


def _targets(
    files: Sequence[LabelledFile], classes: Sequence[str], mapping: dict[str, str]
) -> list[str | None]:
    """The model class of each file's label (after ``mapping``, ignoring case), or None."""
    by_fold = {c.casefold(): c for c in classes}
    for src, dst in mapping.items():
        if dst.casefold() not in by_fold:
            raise SongEvaluationError(
                f"--map {src}={dst}: {dst!r} is not a class of the model ({', '.join(classes)})"
            )
    out: list[str | None] = []
    for f in files:
        label = mapping.get(f.label.casefold(), f.label)
        out.append(by_fold.get(label.casefold()))
    return out


# --- metrics ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Metric:
    """A score and its percentile bootstrap interval."""

    value: float
    ci_low: float
    ci_high: float

    def to_dict(self) -> dict[str, float | None]:
        return {k: _num(v) for k, v in vars(self).items()}


@dataclass
class Metrics:
    """The scores of the scored files. ``labels``: the classes among the labels (the rows of
    ``confusion``, the classes of ``recall``); ``predicted``: ``labels`` and any other class the
    model answered (the columns)."""

    n: int
    accuracy: Metric
    balanced_accuracy: Metric
    macro_f1: Metric
    recall: dict[str, Metric]
    support: dict[str, int]
    labels: list[str]
    predicted: list[str]
    confusion: list[list[int]]
    n_boot: int
    seed: int
    alpha: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "accuracy": self.accuracy.to_dict(),
            "balanced_accuracy": self.balanced_accuracy.to_dict(),
            "macro_f1": self.macro_f1.to_dict(),
            "recall": {c: m.to_dict() for c, m in self.recall.items()},
            "support": dict(self.support),
            "confusion": {
                "labels": self.labels,
                "predicted": self.predicted,
                "counts": self.confusion,
            },
            "bootstrap": {
                "n_boot": self.n_boot,
                "seed": self.seed,
                "alpha": self.alpha,
                "method": "percentile, resampling files",
            },
        }

    def flat(self) -> dict[str, float]:
        """``{name: value}`` of every score and bound (``recall_<class>``…), NaN left out."""
        out: dict[str, float] = {"n_scored": float(self.n)}
        named = {
            "accuracy": self.accuracy,
            "balanced_accuracy": self.balanced_accuracy,
            "macro_f1": self.macro_f1,
            **{f"recall_{c}": m for c, m in self.recall.items()},
        }
        for name, m in named.items():
            for suffix, v in (("", m.value), ("_ci_low", m.ci_low), ("_ci_high", m.ci_high)):
                if not math.isnan(v):
                    out[name + suffix] = v
        return out


def _num(v: float) -> float | None:
    return None if math.isnan(v) else float(v)


def _scores(means: dict[str, Any], k: int) -> tuple[Any, Any, Any, list[Any]]:
    """accuracy, balanced accuracy, macro-F1 and recalls from the column means (arrays or
    scalars): recall = tp/true, F1 = 2 tp/(true + predicted), classes absent from the labels
    (of a resample) left out of the averages."""
    with np.errstate(invalid="ignore", divide="ignore"):
        recalls = [
            np.where(means["true"][i] > 0, means["tp"][i] / means["true"][i], np.nan)
            for i in range(k)
        ]
        f1 = [
            np.where(
                means["true"][i] > 0,
                2 * means["tp"][i] / (means["true"][i] + means["pred"][i]),
                np.nan,
            )
            for i in range(k)
        ]
    import warnings

    with warnings.catch_warnings():  # a resample may hold one class only: nanmean of one
        warnings.simplefilter("ignore", RuntimeWarning)
        balanced = np.nanmean(np.stack(recalls), axis=0)
        macro_f1 = np.nanmean(np.stack(f1), axis=0)
    return means["correct"], balanced, macro_f1, recalls


def compute_metrics(
    y_true: Sequence[str],
    y_pred: Sequence[str],
    classes: Sequence[str],
    *,
    n_boot: int = 2000,
    seed: int = 0,
    alpha: float = 0.05,
) -> Metrics:
    """The scores of predictions ``y_pred`` against labels ``y_true`` (both model classes),
    with percentile bootstrap intervals from ``n_boot`` resamples of the files."""
    from benchmark.stats.bootstrap import bootstrap_means, percentile_interval

    truth, pred = np.asarray(y_true, dtype=object), np.asarray(y_pred, dtype=object)
    if truth.size == 0 or truth.shape != pred.shape:
        raise SongEvaluationError("no scored files to compute metrics on")
    labels = [c for c in classes if (truth == c).any()]
    predicted = labels + [c for c in classes if c not in labels and (pred == c).any()]
    k = len(labels)
    cols = {
        "correct": [(truth == pred).astype(float)],
        "true": [(truth == c).astype(float) for c in labels],
        "tp": [((truth == c) & (pred == c)).astype(float) for c in labels],
        "pred": [(pred == c).astype(float) for c in labels],
    }
    flat = [c for group in cols.values() for c in group]
    means = {g: [float(c.mean()) for c in v] for g, v in cols.items()}
    point = _scores(means | {"correct": means["correct"][0]}, k)
    boots = bootstrap_means(flat, n_boot=n_boot, seed=seed)  # "correct" first: as bootstrap_ci
    it = iter(boots)
    resampled = {g: [next(it) for _ in v] for g, v in cols.items()}
    boot = _scores(resampled | {"correct": resampled["correct"][0]}, k)

    def metric(value: Any, samples: Any) -> Metric:
        lo, hi = percentile_interval(samples, alpha)
        return Metric(float(value), lo, hi)

    cm = [[int(((truth == t) & (pred == p)).sum()) for p in predicted] for t in labels]
    return Metrics(
        n=int(truth.size),
        accuracy=metric(point[0], boot[0]),
        balanced_accuracy=metric(point[1], boot[1]),
        macro_f1=metric(point[2], boot[2]),
        recall={c: metric(point[3][i], boot[3][i]) for i, c in enumerate(labels)},
        support={c: int((truth == c).sum()) for c in labels},
        labels=labels,
        predicted=predicted,
        confusion=cm,
        n_boot=n_boot,
        seed=seed,
        alpha=alpha,
    )


# --- the evaluation -----------------------------------------------------------------------------
@dataclass
class SongEvaluation:
    """A model's evaluation on a labelled input: one row per file (``scored``, ``error`` or
    ``skipped``), the labels it skipped and the metrics of the scored files."""

    model: SavedModel
    source: str
    mapping: dict[str, str]
    rows: list[dict[str, Any]]
    skipped_labels: dict[str, int]
    metrics: Metrics
    windows: bool = False
    #: filled by the MLflow logging: run id, experiment, ``models:/name/version``
    tracking: dict[str, Any] = field(default_factory=dict)

    @property
    def classes(self) -> list[str]:
        return self.model.classes

    def count(self, status: str) -> int:
        return sum(r["status"] == status for r in self.rows)

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [r for r in self.rows if r["status"] == "error"]

    def model_info(self) -> dict[str, Any]:
        meta = self.model.meta
        return {
            "path": str(self.model.path),
            "description": self.model.describe(),
            "feature_set": self.model.feature_set,
            "kind": meta.get("kind", "pair"),
            "pair": meta.get("pair"),
            "benchmark": meta.get("benchmark"),
            "classes": self.classes,
        }

    def to_dict(self) -> dict[str, Any]:
        """Everything: the model, the input, the counts, skipped labels, metrics, every row."""
        return {
            "model": self.model_info(),
            "input": {"source": self.source, "mapping": self.mapping, "windows": self.windows},
            "protocol": PROTOCOL_NOTE,
            "counts": {"files": len(self.rows), **{s: self.count(s) for s in ROW_STATUS}},
            "skipped_labels": self.skipped_labels,
            "metrics": self.metrics.to_dict(),
            "mlflow": self.tracking or None,
            "files": self.rows,
        }


def _row(f: LabelledFile, target: str | None, result: Any, classes: Sequence[str]) -> dict:
    row: dict[str, Any] = {
        "file": f.path,
        "label": f.label,
        "class": target,
        "status": "skipped",
        "predicted": None,
        "probability": None,
        "correct": None,
        "error": None,
        "warning": None,
    }
    if isinstance(result, FilePrediction):
        genre, prob = result.top(1)[0]
        row.update(
            status="scored",
            predicted=genre,
            probability=round(prob, 6),
            correct=genre == target,
            warning=result.warning,
        )
        row.update(
            {f"proba_{c}": round(float(v), 6) for c, v in zip(classes, result.proba, strict=True)}
        )
        return row
    if isinstance(result, Exception):
        row.update(status="error", error=str(result))
    row.update({f"proba_{c}": None for c in classes})
    return row


def evaluate_songs(
    model: SavedModel,
    files: Sequence[LabelledFile],
    *,
    source: str = "",
    mapping: dict[str, str] | None = None,
    windows: bool = False,
    n_boot: int = 2000,
    seed: int = 0,
    on_file: Callable[[str, FilePrediction | GenrebenchError], None] | None = None,
    jobs: int = 1,
) -> SongEvaluation:
    """Predict every file whose label is a class of ``model`` (``on_file`` sees each result as
    it comes; ``jobs``: processes extracting features) and score them; files of other labels
    are skipped, never predicted."""
    mapping = dict(mapping or {})
    classes = model.classes
    targets = _targets(files, classes, mapping)
    skipped: dict[str, int] = {}
    for f, t in zip(files, targets, strict=True):
        if t is None:
            skipped[f.label] = skipped.get(f.label, 0) + 1
    known = [i for i, t in enumerate(targets) if t is not None]
    if not known:
        raise SongEvaluationError(
            f"no file has a label the model knows: the labels {', '.join(sorted(skipped))} "
            f"are not among its classes ({', '.join(classes)}); map them with "
            "--map LABEL=CLASS"
        )
    results: dict[int, FilePrediction | GenrebenchError] = {}
    for i, (_, result) in zip(
        known,
        predict_files(model, [files[i].path for i in known], windows=windows, jobs=jobs),
        strict=True,
    ):
        results[i] = result
        if on_file is not None:
            on_file(files[i].path, result)
    rows = [_row(f, targets[i], results.get(i), classes) for i, f in enumerate(files)]
    scored = [r for r in rows if r["status"] == "scored"]
    if not scored:
        first = next(r["error"] for r in rows if r["status"] == "error")
        raise SongEvaluationError(
            f"none of the {len(known)} file(s) with a known label could be used (first: {first})"
        )
    metrics = compute_metrics(
        [r["class"] for r in scored],
        [r["predicted"] for r in scored],
        classes,
        n_boot=n_boot,
        seed=seed,
    )
    return SongEvaluation(
        model, source, mapping, rows, dict(sorted(skipped.items())), metrics, windows
    )


# --- writing ------------------------------------------------------------------------------------
def metrics_table(ev: SongEvaluation) -> list[dict[str, Any]]:
    """The metrics as rows ``metric, class, value, ci_low, ci_high, n`` (the CSV beside the
    per-file rows)."""
    m = ev.metrics
    rows = [
        {"metric": name, "class": None, **getattr(m, name).to_dict(), "n": m.n}
        for name in ("accuracy", "balanced_accuracy", "macro_f1")
    ]
    rows += [
        {"metric": "recall", "class": c, **r.to_dict(), "n": m.support[c]}
        for c, r in m.recall.items()
    ]
    return rows


def metrics_csv_path(path: Path) -> Path:
    """Where ``--output X.csv`` puts its metrics: ``X.metrics.csv`` beside it."""
    return path.with_name(f"{path.stem}.metrics.csv")


def _atomic(path: Path, write: Callable[[str], object]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=path.suffix + ".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def write_song_evaluation(ev: SongEvaluation, path: Path) -> list[Path]:
    """``.json``: everything (:meth:`SongEvaluation.to_dict`); ``.csv``: one row per file, and the
    metrics in :func:`metrics_csv_path` beside it. Written atomically; returns the files."""
    import pandas as pd

    path = Path(path)
    if path.suffix.lower() == ".json":
        _atomic(path, lambda t: Path(t).write_text(json.dumps(ev.to_dict(), indent=2)))
        return [path]
    _atomic(path, lambda t: pd.DataFrame(ev.rows).to_csv(t, index=False))
    side = metrics_csv_path(path)
    _atomic(side, lambda t: pd.DataFrame(metrics_table(ev)).to_csv(t, index=False))
    return [path, side]
