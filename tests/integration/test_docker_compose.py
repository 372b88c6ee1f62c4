"""docker-compose.yml's services run commands genrebench and MLflow accept (no Docker engine)."""

from __future__ import annotations


def _compose_value(arg: object) -> str:
    """``${NAME:-default}`` as docker compose substitutes it with NAME unset."""
    import re

    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", str(arg))


def test_docker_compose_runs_commands_genrebench_and_mlflow_accept() -> None:
    """No Docker engine here: check instead that the compose file's commands parse with the
    real CLIs and that the image holds every folder genrebench reads at run time."""
    import subprocess
    import sys

    import yaml

    from benchmark.cli import main
    from benchmark.paths import project_root

    root = project_root()
    compose = yaml.safe_load((root / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"postgres", "mlflow", "worker"} <= set(services)
    worker = [_compose_value(a) for a in services["worker"]["command"]]
    assert worker[0] == "worker"
    group = main.make_context("genrebench", list(worker))
    sub = main.get_command(group, worker[0])
    ctx = sub.make_context(worker[0], worker[1:])  # raises on an unknown or malformed option
    assert ctx.params["config_name"] == "quick" and ctx.params["data_dir"] == "/data"
    storage = services["worker"]["environment"]["GENREBENCH_STORAGE"]
    assert _compose_value(storage).startswith("postgresql+psycopg://genrebench:")

    mlflow = services["mlflow"]
    assert mlflow["entrypoint"] == ["mlflow", "server"]
    usage = subprocess.run(
        [sys.executable, "-m", "mlflow", "server", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    flags = [a for a in mlflow["command"] if str(a).startswith("--")]
    assert flags and all(f in usage for f in flags), [f for f in flags if f not in usage]

    dockerfile = (root / "Dockerfile").read_text()
    copied = {line.split()[1] for line in dockerfile.splitlines() if line.startswith("COPY")}
    assert {"benchmark", "configs", "search_spaces", "datasets"} <= copied
    for folder in ("configs", "search_spaces", "datasets"):
        assert (root / folder).is_dir()
