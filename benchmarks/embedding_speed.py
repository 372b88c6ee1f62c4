"""Extraction speed of the ``embedding_musicnn`` feature set on one CPU core: seconds per 30-s
clip for decoding (at 16 kHz), musicnn's log-mel and patching, and the network (10 patches of
3 s through the numpy port of MSD_musicnn), and the whole row.

    python benchmarks/embedding_speed.py [--data-dir ../shared/datasets/gtzan] [--clips 10]

Without a dataset (no ``--data-dir``, no ``$GENREBENCH_DATA``) it times generated 30-s clips.
BLAS is limited to one thread (as in the extraction workers); the figures are CPU seconds
(``time.process_time``, robust to other load on the machine) and wall seconds, medians over the
clips after one warm-up clip. The machine's load average is printed first.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--data-dir", default=None, help="GTZAN folder (default: $GENREBENCH_DATA)")
    ap.add_argument("--clips", type=int, default=10)
    args = ap.parse_args(argv)

    from threadpoolctl import threadpool_limits

    from benchmark.audio.decoding import Clip, load_clip
    from benchmark.features import _musicnn as mnn
    from benchmark.features.musicnn_embedding import clip_embedding

    if mnn.musicnn_missing():
        print(mnn.musicnn_missing())
        return 1
    paths: list[str] = []
    if args.data_dir or os.environ.get("GENREBENCH_DATA"):
        from benchmark.data import Dataset

        ds = Dataset.open(args.data_dir)
        all_paths = [str(p) for p in ds.tracks["audio_path"].dropna()]
        rng = np.random.default_rng(0)
        paths = [all_paths[i] for i in sorted(rng.permutation(len(all_paths))[: args.clips + 1])]
    load = os.getloadavg()
    source = f"{len(paths)} GTZAN clips" if paths else f"{args.clips + 1} generated clips"
    print(
        f"{source}; {os.cpu_count()} CPUs, load average {load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f}"
    )

    def clip(i: int) -> tuple[Clip, float, float]:
        c0, w0 = time.process_time(), time.perf_counter()
        if paths:
            got = load_clip(paths[i], mnn.SAMPLE_RATE, 30.0)
        else:
            rng = np.random.default_rng(i)
            y = (0.1 * rng.standard_normal(30 * mnn.SAMPLE_RATE)).astype(np.float32)
            got = Clip(y, mnn.SAMPLE_RATE, len(y), f"generated-{i}")
        return got, time.process_time() - c0, time.perf_counter() - w0

    rows: list[dict[str, float]] = []
    with threadpool_limits(limits=1):
        mnn.load_weights()
        for i in range(len(paths) if paths else args.clips + 1):
            c, decode_cpu, decode_wall = clip(i)
            t = {"decode": (decode_cpu, decode_wall)}
            c0, w0 = time.process_time(), time.perf_counter()
            p = mnn.patches(mnn.log_mel(c.samples), c.n_audio // mnn.HOP)
            t["log-mel + patches"] = (time.process_time() - c0, time.perf_counter() - w0)
            c0, w0 = time.process_time(), time.perf_counter()
            mnn.embed_patches(p)
            t[f"network ({len(p)} patches)"] = (time.process_time() - c0, time.perf_counter() - w0)
            c0, w0 = time.process_time(), time.perf_counter()
            clip_embedding(c.samples, c.sample_rate, c.n_audio, "penultimate")
            t["row (log-mel + network + pooling)"] = (
                time.process_time() - c0,
                time.perf_counter() - w0,
            )
            if i:  # the first clip warms caches up
                rows.append({f"{k}|{j}": v[j] for k, v in t.items() for j in (0, 1)})
    print(f"{'stage, per 30-s clip, one core':<40} {'CPU s':>8} {'wall s':>8}")
    for key in dict.fromkeys(k.split("|")[0] for k in rows[0]):
        cpu = np.median([r[f"{key}|0"] for r in rows])
        wall = np.median([r[f"{key}|1"] for r in rows])
        print(f"{key:<40} {cpu:>8.3f} {wall:>8.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
