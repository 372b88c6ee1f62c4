"""``genrebench ui``: MLflow's own UI on the benchmark's local tracking store, beside the page."""

from __future__ import annotations

from pathlib import Path

from benchmark.errors import GenrebenchError
from benchmark.results import MLFLOW_ARTIFACTS_DIR, MLFLOW_DB
from benchmark.storage import default_tracking_uri

__all__ = ["MLFLOW_UI_ENV", "mlflow_ui_argv"]


#: environment of ``genrebench ui``: no usage telemetry, and no background job runner (MLflow 3
#: otherwise starts a job runner with seven queue consumers, which a local browsing session
#: never uses and which triples the start-up time)
MLFLOW_UI_ENV = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
}


def mlflow_ui_argv(results_dir: Path, port: int, python: str) -> list[str]:
    """``mlflow ui`` on 127.0.0.1 against the benchmark's SQLite tracking store (one worker:
    one local user; run it with :data:`MLFLOW_UI_ENV` added to the environment)."""
    db = Path(results_dir) / MLFLOW_DB
    if not db.is_file():
        raise GenrebenchError(
            f"no MLflow tracking store {db}: the run was made with --no-tracking or with "
            "--tracking-uri (open that server instead)"
        )
    return [
        python,
        "-m",
        "mlflow",
        "ui",
        "--backend-store-uri",
        default_tracking_uri(Path(results_dir)),
        "--artifacts-destination",
        (Path(results_dir) / MLFLOW_ARTIFACTS_DIR).resolve().as_uri(),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
