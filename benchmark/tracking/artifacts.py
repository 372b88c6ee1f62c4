"""What a logged fold leaves as artifacts: best params, the outcome at a glance, the split, the
predictions and their confusion matrix (as CSV and as a picture)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from benchmark.results import FoldOutcome


def write_fold_artifacts(out: Path, outcome: FoldOutcome, split: pd.DataFrame) -> None:
    """Write the files of ``folds/fold_<k>/`` into the folder ``out``."""
    (out / "best_params.json").write_text(
        json.dumps(outcome.params, sort_keys=True, indent=2, default=str)
    )
    (out / "outcome.json").write_text(json.dumps(outcome.summary(), indent=2, default=str))
    split.to_csv(out / "split.csv", index=False)
    preds = outcome.predictions
    if preds is not None and len(preds):
        preds.to_csv(out / "predictions.csv", index=False)
        cm = confusion_matrix(preds)
        cm.to_csv(out / "confusion_matrix.csv")
        title = f"{outcome.pair.label} · fold {int(outcome.fold)}"
        _plot_confusion(cm, title, out / "confusion_matrix.png")


def confusion_matrix(predictions: pd.DataFrame) -> pd.DataFrame:
    """Counts, rows = true genre, columns = predicted genre, in the class order of the
    ``proba_<genre>`` columns (else sorted)."""
    classes = [c.removeprefix("proba_") for c in predictions.columns if c.startswith("proba_")]
    seen = set(map(str, predictions["y_true"])) | set(map(str, predictions["y_pred"]))
    classes += sorted(seen - set(classes))
    cm = pd.crosstab(predictions["y_true"].astype(str), predictions["y_pred"].astype(str)).reindex(
        index=classes, columns=classes, fill_value=0
    )
    cm.index.name, cm.columns.name = "true", "predicted"
    return cm.astype(int)


def _plot_confusion(cm: pd.DataFrame, title: str, path: Path) -> None:
    from matplotlib.figure import Figure  # no pyplot: no global figure state, no GUI backend

    n = len(cm)
    size = max(3.0, 0.45 * n + 1.5)
    fig = Figure(figsize=(size, size))
    ax = fig.add_subplot()
    values = cm.to_numpy()
    ax.imshow(values, cmap="Blues")
    ax.set_xticks(range(n), cm.columns, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(n), cm.index, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    top = values.max() if values.size else 0
    for i in range(n):
        for j in range(n):
            if values[i, j]:
                color = "white" if values[i, j] > top / 2 else "black"
                ax.text(j, i, str(values[i, j]), ha="center", va="center", fontsize=7, color=color)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
