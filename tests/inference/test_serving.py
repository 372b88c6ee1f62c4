"""The saved final model in MLflow's Model Registry (one version per distinct model) and served
over REST by ``mlflow models serve``."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

pytest.importorskip("librosa")
from helpers import UNIT_GENRES, save_unit_model, write_genre_clip  # noqa: E402


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """predict's saved logistic regression (``save_unit_model``) and a jazz-like clip."""
    tmp = tmp_path_factory.mktemp("serving")
    unit = save_unit_model(tmp, UNIT_GENRES)
    songs = tmp / "songs"
    write_genre_clip(songs / "jazz_like.wav", "jazz", seed=99)
    return {"dir": unit.dir, "songs": songs, "ds": unit.ds}


def test_final_model_run_says_what_it_is_and_its_version_is_the_champion(
    trained: dict, tmp_path: Path
) -> None:
    import shutil

    from mlflow import MlflowClient

    from benchmark.inference.serving import log_final_model

    model_dir = tmp_path / "final_model"
    shutil.copytree(trained["dir"], model_dir)
    meta = json.loads((model_dir / "model.json").read_text())
    meta.update(
        selected_by="artist_kfold",
        seed=3,
        inner_accuracy=0.61,
        protocol_scores={
            "artist_kfold": {"accuracy": 0.52, "accuracy_std": 0.04, "folds": "10/10"},
            "fault_filtered": {"accuracy": 0.47, "accuracy_std": None, "folds": "1/1"},
        },
    )
    (model_dir / "model.json").write_text(json.dumps(meta))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert log_final_model(model_dir, uri, tmp_path) == "models:/genrebench-unit/1"
    client = MlflowClient(uri)
    version = client.get_model_version("genrebench-unit", "1")
    assert str(client.get_model_version_by_alias("genrebench-unit", "champion").version) == "1"
    assert "librosa_30s · logreg" in version.description
    assert "artist_kfold cross-validated accuracy 0.520 ± 0.040" in version.description
    run = client.get_run(version.run_id)
    assert run.info.status == "FINISHED"
    assert {k: run.data.params[k] for k in ("kind", "feature_set", "family", "selected_by")} == {
        "kind": "pair",
        "feature_set": "librosa_30s",
        "family": "logreg",
        "selected_by": "artist_kfold",
    }
    assert run.data.params["model.C"] == "1.0"
    metrics = run.data.metrics
    assert metrics["selection_accuracy"] == 0.52 and metrics["selection_accuracy_std"] == 0.04
    assert metrics["fault_filtered_accuracy"] == 0.47 and metrics["final_inner_accuracy"] == 0.61
    # another model registered later takes the alias; exporting the first again takes it back
    (model_dir / "model.json").write_text(json.dumps({**meta, "params": {"C": 2.0}}))
    assert log_final_model(model_dir, uri, tmp_path) == "models:/genrebench-unit/2"
    assert str(client.get_model_version_by_alias("genrebench-unit", "champion").version) == "2"
    (model_dir / "model.json").write_text(json.dumps(meta))
    assert log_final_model(model_dir, uri, tmp_path) == "models:/genrebench-unit/1"
    assert str(client.get_model_version_by_alias("genrebench-unit", "champion").version) == "1"


def test_registered_model_is_served_over_rest(trained: dict, tmp_path: Path) -> None:
    """Register the saved model in MLflow's Model Registry, serve it with `mlflow models serve
    --env-manager local` on 127.0.0.1 and ask it for a real clip's genre over REST."""
    import signal
    import socket
    import subprocess
    import sys
    import urllib.request

    from mlflow import MlflowClient

    from benchmark.inference.serving import log_final_model

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    model_uri = log_final_model(trained["dir"], uri, tmp_path)
    assert model_uri == "models:/genrebench-unit/1"
    version = MlflowClient(uri).get_model_version("genrebench-unit", "1")
    assert version.tags["fault_filtered_accuracy"] == "1.0000"
    # a rerun exports the same model (its timing aside): the same version, not a new one
    meta_path = trained["dir"] / "model.json"
    original = meta_path.read_text()
    meta = json.loads(original)
    meta_path.write_text(json.dumps({**meta, "fit_s": 9.5, "saved_at": "2030-01-01T00:00:00"}))
    try:
        assert log_final_model(trained["dir"], uri, tmp_path) == model_uri
        meta_path.write_text(json.dumps({**meta, "params": {"changed": True}}))
        assert log_final_model(trained["dir"], uri, tmp_path) == "models:/genrebench-unit/2"
    finally:
        meta_path.write_text(original)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # mlflow execs `uvicorn` from PATH: find it beside this interpreter, venv activated or not
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    env = dict(os.environ, MLFLOW_TRACKING_URI=uri, PATH=path)
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "models", "serve", "-m", model_uri,
             "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port), "--workers", "1"],
            stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, log.read_text()[-3000:]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "mlflow models serve did not answer in 120 s"
            time.sleep(0.5)
        song = str(trained["songs"] / "jazz_like.wav")
        body = {"dataframe_split": {"columns": ["path"], "data": [[song], ["/no/such.wav"]]}}
        req = urllib.request.Request(
            f"http://127.0.0.1:{port}/invocations",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=60) as resp:
            answer = json.loads(resp.read())["predictions"]
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    good, bad = answer
    probas = {k: v for k, v in good.items() if k.startswith("proba_")}
    assert len(probas) == len(trained["ds"].classes)
    assert sum(probas.values()) == pytest.approx(1.0) and good["genre"] == "jazz"
    assert not good["error"] and "no such file" in bad["error"]
