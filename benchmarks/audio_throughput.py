"""Audio throughput: clips per second for decoding, log-mel and the 57 librosa features, and
the 57 features before (plain librosa calls, :func:`reference_features`) and after (one shared
STFT and a compiled HPSS median, :func:`clip_features`).

    python benchmarks/audio_throughput.py --data-dir ../shared/datasets/gtzan \\
        [--clips 40] [--reference-clips 6] [--n-jobs 2]

Per-clip figures are measured inside the worker: CPU seconds (``time.process_time``, robust to
other load on the machine) and wall seconds; "clips/s" is the wall-clock rate of the whole
parallel run (the workers are started and warmed up first, once), and "min/1000" extrapolates
it to 1000 clips. The machine's load
average is printed first: on a busy machine the wall-clock figures are pessimistic. Each stage
includes decoding the first 30 s of the clip.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from benchmark.audio.decoding import load_clip
from benchmark.data import Dataset
from benchmark.features.audio_base import imap_progress
from benchmark.features.audio_tensors import log_mel
from benchmark.features.librosa_features import FEATURE_NAMES, clip_features, reference_features


def _decode(path: str) -> object:
    return load_clip(path)


def _logmel(path: str) -> object:
    clip = load_clip(path)
    return log_mel(clip.samples, clip.sample_rate)


def _features(path: str) -> object:
    clip = load_clip(path)
    return clip_features(clip.audio, clip.sample_rate)


def _reference(path: str) -> object:
    clip = load_clip(path)
    return reference_features(clip.audio, clip.sample_rate)


STAGES: dict[str, Callable[[str], object]] = {
    "decode": _decode,
    "logmel": _logmel,
    "57 features": _features,
    "57 features, plain librosa (before)": _reference,
}


def _timed(job: tuple[str, str]) -> tuple[object, float, float]:
    stage, path = job
    c0, w0 = time.process_time(), time.perf_counter()
    out = STAGES[stage](path)
    return out, time.process_time() - c0, time.perf_counter() - w0


def _warm(paths: list[str]) -> None:
    """Compile numba (librosa's and ours) and fill caches once, outside the timings."""
    clip = load_clip(paths[0], seconds=3.0)
    clip_features(clip.audio, clip.sample_rate)
    reference_features(clip.audio, clip.sample_rate)
    log_mel(clip.samples, clip.sample_rate)


def run_stage(stage: str, paths: list[str], n_jobs: int) -> tuple[list[object], dict[str, float]]:
    t0 = time.perf_counter()
    got = list(imap_progress(_timed, [(stage, p) for p in paths], n_jobs=n_jobs, description=stage))
    wall = time.perf_counter() - t0
    cpu = np.array([g[1] for g in got])
    per_wall = np.array([g[2] for g in got])
    stats = {
        "clips": len(paths),
        "n_jobs": n_jobs,
        "cpu_s_per_clip": float(np.median(cpu)),
        "wall_s_per_clip": float(np.median(per_wall)),
        "clips_per_s": len(paths) / wall,
        "s_per_1000": 1000 * wall / len(paths),
    }
    return [g[0] for g in got], stats


def _row(stage: str, s: dict[str, float]) -> str:
    return (
        f"{stage:<38} {s['n_jobs']:>3} {s['clips']:>5} {s['cpu_s_per_clip']:>9.3f} "
        f"{s['wall_s_per_clip']:>9.3f} {s['clips_per_s']:>8.2f} {s['s_per_1000'] / 60:>8.1f}"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--data-dir", default=None, help="GTZAN folder (default: $GENREBENCH_DATA)")
    ap.add_argument("--clips", type=int, default=40, help="clips per throughput stage")
    ap.add_argument("--reference-clips", type=int, default=6, help="clips for the 'before' run")
    ap.add_argument("--n-jobs", type=int, default=2)
    args = ap.parse_args(argv)

    ds = Dataset.open(args.data_dir)
    paths = [str(p) for p in ds.tracks["audio_path"].dropna()]
    if not paths:
        print(f"no audio files in {ds.root}")
        return 1
    rng = np.random.default_rng(0)
    chosen = [paths[i] for i in sorted(rng.permutation(len(paths))[: args.clips])]
    load = os.getloadavg()
    print(
        f"{len(chosen)} clips of {ds.root}; {os.cpu_count()} CPUs, load average "
        f"{load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f}"
    )
    _warm(chosen)

    header = (
        f"{'stage':<38} {'jobs':>3} {'clips':>5} {'cpu s/clip':>9} {'wall s/clip':>9} "
        f"{'clips/s':>8} {'min/1000':>8}"
    )
    print(header)
    print("-" * len(header))
    if args.n_jobs > 1:  # start the workers (imports, numba caches) outside the timings
        t0 = time.perf_counter()
        run_stage("57 features", chosen[: 2 * args.n_jobs], args.n_jobs)
        print(f"(worker start-up and warm-up: {time.perf_counter() - t0:.1f} s, not counted)")
    for stage in ("decode", "logmel", "57 features"):
        for n_jobs in sorted({1, args.n_jobs}):
            _, s = run_stage(stage, chosen, n_jobs)
            print(_row(stage, s), flush=True)

    few = chosen[: args.reference_clips]
    before, s_before = run_stage("57 features, plain librosa (before)", few, 1)
    after, s_after = run_stage("57 features", few, 1)
    print(_row("57 features, plain librosa (before)", s_before))
    print(_row("57 features, shared STFT (after)", s_after))
    b, a = np.array(before), np.array(after)
    rel = np.abs(a - b) / np.maximum(np.abs(b), 1e-12)
    worst = np.unravel_index(np.argmax(rel), rel.shape)
    print(
        f"\nbefore/after on {len(few)} clips: {s_before['cpu_s_per_clip']:.2f} → "
        f"{s_after['cpu_s_per_clip']:.2f} CPU s/clip "
        f"({s_before['cpu_s_per_clip'] / s_after['cpu_s_per_clip']:.1f}x); largest relative "
        f"difference {rel.max():.1e} ({FEATURE_NAMES[worst[1]]} of "
        f"{Path(few[worst[0]]).name}), median {np.median(rel):.1e}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
