"""Who may join a shared benchmark: its identity, and the manifest the first worker stores.

A worker joins only if its config digest, data checksum and code version equal the
benchmark's; otherwise it refuses with one line that says what differs. The manifest (jobs,
skipped pairs, splits, provenance, budget, race) lets any machine that reads the storage
assemble the results or show progress without the data.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import benchmark
from benchmark.config import BenchmarkConfig
from benchmark.errors import GenrebenchError
from benchmark.execution.workers.board import BenchmarkRecord
from benchmark.paths import manifests_dir, search_spaces_dir
from benchmark.results import PairKey
from benchmark.storage import (
    mask_url,
)

__all__ = [
    "RefusedToJoin",
    "check_identity",
    "code_version",
    "identity",
    "benchmark_manifest",
    "pair_tuple",
]


#: identity fields a joining worker must match, and how a refusal names them
IDENTITY_FIELDS = {
    "config_digest": "config digest",
    "data_checksum": "data checksum",
    "code_version": "code version",
}


#: the code whose change changes results (the code version hashes these)
RESULT_CODE = (
    "_audio_kernels.py",
    "audio.py",
    "config.py",
    "data",
    "execution/racing.py",
    "results.py",
    "sampler_seeding.py",
    "scoring.py",
    "search_space.py",
    "stats",
    "trial_count.py",
    "tuning.py",
    "features",
    "models",
    "protocols",
)


class RefusedToJoin(GenrebenchError):
    """This worker's data, code or config differs from the benchmark's."""


def code_version() -> str:
    """The package version plus a digest of the code and files that change results (the
    harness, families, feature sets, search spaces, dataset manifests)."""
    root = Path(benchmark.__file__).resolve().parent
    files: list[tuple[str, Path]] = []
    for name in RESULT_CODE:
        path = root / name
        if not path.exists():  # a module moved or renamed: its code would go unhashed
            raise RuntimeError(f"identity.RESULT_CODE names {name!r}, not in {root}")
        found = sorted(path.rglob("*.py")) if path.is_dir() else [path]
        files += [(f"benchmark/{p.relative_to(root)}", p) for p in found if p.is_file()]
    for folder in (search_spaces_dir(), manifests_dir()):
        files += [(f"{folder.name}/{p.name}", p) for p in sorted(folder.glob("*")) if p.is_file()]
    h = hashlib.sha256()
    for rel, path in files:
        h.update(rel.encode() + b"\0" + path.read_bytes() + b"\0")
    return f"{benchmark.__version__}+{h.hexdigest()[:12]}"


def identity(cfg: BenchmarkConfig, prov: dict[str, Any]) -> dict[str, Any]:
    return {
        "config_digest": cfg.digest(),
        "data_checksum": prov["data_checksum"],
        "code_version": code_version(),
    }


def check_identity(record: BenchmarkRecord, mine: dict[str, Any], where: str) -> None:
    for key, what in IDENTITY_FIELDS.items():
        theirs = record.identity.get(key)
        if theirs != mine[key]:
            prov = record.manifest.get("provenance", {})
            started = datetime.fromtimestamp(record.created_at, UTC).strftime("%Y-%m-%d %H:%M")
            raise RefusedToJoin(
                f"refusing to join benchmark {record.name!r} in {where}: its {what} is {theirs}, "
                f"this worker's is {mine[key]} (benchmark started on {prov.get('host', '?')} at "
                f"{started} UTC); start every worker with the same data, code and config, or "
                "use another --storage"
            )


def benchmark_manifest(
    cfg: BenchmarkConfig, plan: Any, prov: dict[str, Any], url: str
) -> dict[str, Any]:
    return {
        "provenance": prov,
        "storage": mask_url(url),
        "n_trials": cfg.n_trials,
        # the benchmark's wall-clock budget (the first worker's): every worker stops there
        "budget_s": cfg.budget_seconds(),
        # and its race (the first worker's: racing is not in the digest), raced protocols
        "racing": cfg.racing,
        "raced": [n for n, p in plan.protocols.items() if p.kind == "k-fold"],
        "baseline": [cfg.baseline["feature_set"], cfg.baseline["family"]],
        "jobs": [
            {"study": j.study_name, "pair": list(pair_tuple(j.pair)), "fold": j.fold}
            for j in plan.jobs
        ],
        "fixed_families": sorted(
            {j.pair.family for j in plan.jobs if not cfg.search_space(j.pair.family).params}
        ),
        "skipped": [o.to_json() for o in plan.skipped],
        "splits": plan.splits.to_dict(orient="list"),
        "protocols": {
            n: p.to_dict() | {"description": p.description} for n, p in plan.protocols.items()
        },
        "context": {
            "benchmark": cfg.name,
            "dataset": cfg.dataset,
            "seed": cfg.seed,
            "config_digest": prov["config_digest"],
            "data_checksum": prov["data_checksum"],
        },
    }


def pair_tuple(pair: PairKey) -> tuple[str, str, str]:
    return (pair.feature_set, pair.family, pair.protocol)
