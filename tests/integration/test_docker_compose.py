"""docker-compose.yml's services run commands genrebench and Dask accept (no Docker engine)."""

from __future__ import annotations


def _compose_value(arg: object) -> str:
    """``${NAME:-default}`` as docker compose substitutes it with NAME unset."""
    import re

    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", str(arg))


def _parse(args: list[str]):
    from benchmark.cli import main

    group = main.make_context("genrebench", list(args))
    sub = main.get_command(group, args[0])
    return sub.make_context(args[0], list(args[1:]))  # raises on an unknown or malformed option


def test_docker_compose_runs_commands_genrebench_and_dask_accept() -> None:
    """No Docker engine here: check instead that the compose file's commands parse with the
    real CLIs, that the scheduler is published on loopback only, and that the image holds every
    folder genrebench reads at run time."""
    import subprocess
    import sys

    import yaml

    from benchmark.paths import project_root

    root = project_root()
    compose = yaml.safe_load((root / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) == {"postgres", "scheduler", "worker", "run"}  # no MLflow server
    worker = [_compose_value(a) for a in services["worker"]["command"]]
    assert _parse(worker).params["address"] == "tcp://scheduler:8786"
    run = _parse([_compose_value(a) for a in services["run"]["command"]])
    assert run.params["config_name"] == "quick" and run.params["data_dir"] == "/data"
    assert run.params["scheduler"] == "tcp://scheduler:8786"
    storage = services["run"]["environment"]["GENREBENCH_STORAGE"]
    assert _compose_value(storage).startswith("postgresql+psycopg://genrebench:")

    scheduler = services["scheduler"]
    assert scheduler["entrypoint"] == ["dask", "scheduler"]
    assert all(p.startswith("127.0.0.1:") for p in scheduler["ports"])
    usage = subprocess.run(
        [sys.executable, "-m", "distributed.cli.dask_scheduler", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    flags = [a for a in scheduler["command"] if str(a).startswith("--")]
    assert flags and all(f in usage for f in flags), [f for f in flags if f not in usage]

    dockerfile = (root / "Dockerfile").read_text()
    copied = {line.split()[1] for line in dockerfile.splitlines() if line.startswith("COPY")}
    assert {"benchmark", "configs", "search_spaces", "datasets"} <= copied
    for folder in ("configs", "search_spaces", "datasets"):
        assert (root / folder).is_dir()
