"""A throwaway PostgreSQL (and an MLflow tracking server on it) on 127.0.0.1, for development,
tests and the scale-out benchmarks. Never for production data: the cluster trusts every local
connection and, unless ``durable``, runs without fsync. It lives with the tests, not in the
installed package: nothing genrebench runs needs it (pytest puts ``tests/`` on ``sys.path``;
a benchmark script adds ``tests/`` to its path).

    python tests/devcluster.py start [--dir DIR] [--port 5433] [--mlflow-port 5001]
    python tests/devcluster.py stop  [--dir DIR]          (DIR: /tmp/genrebench-dev)

``start`` prints the ``export GENREBENCH_STORAGE=... MLFLOW_TRACKING_URI=...`` lines to use;
``scripts/dev_cluster.sh`` wraps both commands.

Debian keeps ``initdb``/``pg_ctl`` off PATH in ``/usr/lib/postgresql/<version>/bin`` and
``initdb`` refuses to run as root, so as root every server command runs as the ``postgres``
user (``runuser -u postgres --``) in a folder that user owns. ``$GENREBENCH_PG_BIN`` names
another folder holding the binaries.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["LocalPostgres", "free_port", "pg_bin_dir", "start_mlflow_server"]

#: the superuser of the throwaway cluster (trust authentication: no password)
SUPERUSER = "postgres"


def pg_bin_dir() -> Path | None:
    """The folder holding ``initdb`` and ``pg_ctl``: ``$GENREBENCH_PG_BIN``, PATH, then the
    newest ``/usr/lib/postgresql/<version>/bin``; None when PostgreSQL is not installed."""
    env = os.environ.get("GENREBENCH_PG_BIN")
    candidates = [Path(env)] if env else []
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    candidates += versions
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file():
            return folder
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _as_server_user() -> list[str]:
    """Root may not run the server: run as ``postgres`` (Debian's package creates it)."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam(SUPERUSER)
    except KeyError:
        raise RuntimeError(
            "running as root and there is no 'postgres' user to run PostgreSQL as"
        ) from None
    return ["runuser", "-u", SUPERUSER, "--"]


@dataclass
class LocalPostgres:
    """One throwaway cluster: ``root/data`` (the cluster), ``root/log``, ``root/sock``."""

    root: Path
    port: int
    bin_dir: Path

    @classmethod
    def start(
        cls,
        root: Path | None = None,
        *,
        port: int = 0,
        databases: tuple[str, ...] = ("genrebench",),
        durable: bool = False,
        max_connections: int = 300,
    ) -> LocalPostgres:
        """initdb (if ``root/data`` holds no cluster yet) and start on 127.0.0.1:``port``
        (0: a free port); create ``databases``. About 2 s."""
        bin_dir = pg_bin_dir()
        if bin_dir is None:
            raise RuntimeError(
                "PostgreSQL is not installed (no initdb): apt-get install -y postgresql, or set "
                "GENREBENCH_PG_BIN to the folder holding initdb and pg_ctl"
            )
        root = Path(root) if root else Path(tempfile.mkdtemp(prefix="genrebench-pg-"))
        root.mkdir(parents=True, exist_ok=True)
        (root / "sock").mkdir(exist_ok=True)
        runas = _as_server_user()
        if runas:
            entry = pwd.getpwnam(SUPERUSER)
            for path in (root, root / "sock"):
                os.chown(path, entry.pw_uid, entry.pw_gid)
            os.chmod(root, 0o700)
        data = root / "data"
        if not (data / "PG_VERSION").is_file():
            _run(
                [
                    *runas,
                    str(bin_dir / "initdb"),
                    "-D",
                    str(data),
                    "-A",
                    "trust",
                    "-U",
                    SUPERUSER,
                    "-E",
                    "UTF8",
                    "--locale=C",
                    "--no-sync",
                ],
                "initdb",
            )
        port = port or free_port()
        settings = [
            "-h 127.0.0.1",
            f"-p {port}",
            f"-k {root / 'sock'}",
            f"-c max_connections={max_connections}",
        ]
        if not durable:
            settings += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
        _run(
            [
                *runas,
                str(bin_dir / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(root / "log"),
                "-w",
                "-t",
                "60",
                "-o",
                " ".join(settings),
                "start",
            ],
            "pg_ctl start",
        )
        (root / "port").write_text(str(port))
        pg = cls(root, port, bin_dir)
        for name in databases:
            pg.create_database(name)
        return pg

    @classmethod
    def attach(cls, root: Path) -> LocalPostgres:
        """The cluster started earlier in ``root`` (for ``stop``)."""
        bin_dir = pg_bin_dir()
        if bin_dir is None:
            raise RuntimeError("PostgreSQL is not installed (no pg_ctl)")
        return cls(Path(root), int((Path(root) / "port").read_text()), bin_dir)

    def url(self, database: str = "genrebench", driver: str = "postgresql+psycopg") -> str:
        return f"{driver}://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> None:
        import psycopg

        with psycopg.connect(self.url("postgres", "postgresql"), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if exists.fetchone() is None:
                conn.execute(f'CREATE DATABASE "{name}"')

    def stop(self, *, remove: bool = True) -> None:
        """Stop the server (fast shutdown) and, with ``remove``, delete its folder."""
        if (self.root / "data" / "postmaster.pid").exists():
            subprocess.run(
                [
                    *_as_server_user(),
                    str(self.bin_dir / "pg_ctl"),
                    "-D",
                    str(self.root / "data"),
                    "-m",
                    "fast",
                    "-w",
                    "-t",
                    "60",
                    "stop",
                ],
                capture_output=True,
                text=True,
                check=False,
            )
        if remove:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> LocalPostgres:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _run(cmd: list[str], what: str) -> None:
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        tail = (out.stderr or out.stdout).strip().splitlines()[-3:]
        raise RuntimeError(f"{what} failed ({out.returncode}): {' / '.join(tail)}")


def start_mlflow_server(
    backend_uri: str, artifacts: Path, port: int, log: Path, *, timeout_s: float = 120
) -> subprocess.Popen:
    """``mlflow server`` on 127.0.0.1:``port`` (one process, PostgreSQL backend, artifacts
    proxied from ``artifacts``); returns once it answers."""
    import urllib.request

    artifacts.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true")
    with open(log, "ab") as fh:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mlflow",
                "server",
                "--backend-store-uri",
                backend_uri,
                "--artifacts-destination",
                artifacts.resolve().as_uri(),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                "1",
            ],
            stdout=fh,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"mlflow server exited ({proc.returncode}); see {log}")
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                return proc
        time.sleep(0.5)
    proc.terminate()
    raise RuntimeError(f"mlflow server did not answer within {timeout_s:.0f} s; see {log}")


def _cmd_start(args: argparse.Namespace) -> None:
    root = Path(args.dir)
    pg = LocalPostgres.start(root / "pg", port=args.port, databases=("genrebench", "mlflow"))
    print(f"PostgreSQL on 127.0.0.1:{pg.port} (cluster in {pg.root})", file=sys.stderr)
    exports = [f"export GENREBENCH_STORAGE={pg.url('genrebench')}"]
    if args.mlflow_port is not None:
        port = args.mlflow_port or free_port()
        proc = start_mlflow_server(
            pg.url("mlflow"), root / "mlartifacts", port, root / "mlflow-server.log"
        )
        (root / "mlflow-server.pid").write_text(str(proc.pid))
        print(
            f"MLflow tracking server on http://127.0.0.1:{port} (pid {proc.pid})", file=sys.stderr
        )
        exports.append(f"export MLFLOW_TRACKING_URI=http://127.0.0.1:{port}")
    print("\n".join(exports))


def _cmd_stop(args: argparse.Namespace) -> None:
    root = Path(args.dir)
    pid_file = root / "mlflow-server.pid"
    if pid_file.is_file():
        pid = int(pid_file.read_text())
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)  # the server we started, in its own session
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                os.killpg(pid, 0)  # ProcessLookupError once the whole group is gone
                time.sleep(0.5)
            os.killpg(pid, signal.SIGKILL)
        pid_file.unlink()
    if (root / "pg" / "port").is_file():
        LocalPostgres.attach(root / "pg").stop(remove=not args.keep)
    print(f"stopped the development cluster in {root}", file=sys.stderr)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python tests/devcluster.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    start = sub.add_parser("start", help="start PostgreSQL (and an MLflow server) on 127.0.0.1")
    start.add_argument("--dir", default="/tmp/genrebench-dev")
    start.add_argument("--port", type=int, default=0, help="PostgreSQL port (0: a free one)")
    start.add_argument(
        "--mlflow-port",
        type=int,
        default=None,
        help="also start `mlflow server` on this port (0: a free one)",
    )
    stop = sub.add_parser("stop", help="stop them and delete the cluster")
    stop.add_argument("--dir", default="/tmp/genrebench-dev")
    stop.add_argument("--keep", action="store_true", help="keep the cluster's files")
    args = parser.parse_args(argv)
    try:
        {"start": _cmd_start, "stop": _cmd_stop}[args.command](args)
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
