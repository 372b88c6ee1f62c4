"""Fidelity of genrebench's numpy port of MSD_musicnn (:mod:`benchmark.features._musicnn`) to
musicnn's original TensorFlow graph: the same log-mel patches through both, every embedding
dimension compared (Pearson r over the patches, largest absolute difference).

Not part of CI: the original graph needs TensorFlow, which genrebench does not depend on. Make a
throwaway TensorFlow venv once (TF 2.15 still builds musicnn's ``tf.compat.v1.layers`` graph;
librosa and soundfile let musicnn's own ``extractor.batch_data`` compute its input too)::

    python3.11 -m venv /tmp/tfvenv
    /tmp/tfvenv/bin/pip install "tensorflow-cpu==2.15.*" "numpy<2" librosa soundfile

then, from genrebench's own environment (with ``pip install --no-deps musicnn==0.1.0``)::

    python benchmarks/musicnn_fidelity.py --tf-python /tmp/tfvenv/bin/python \\
        [--data-dir ../shared/datasets/gtzan] [--clips 20]

This process computes the input patches of ``--clips`` GTZAN clips (genrebench's decoding and
:func:`~benchmark.features._musicnn.log_mel`) and their embeddings with the port; a child
process in the TensorFlow venv (this same file, ``--tf-part``) rebuilds the graph from the
installed musicnn package's ``models.py`` exactly as musicnn's ``extractor.py`` does, restores the
MSD_musicnn checkpoint, runs the same patches (``is_training=False``) and also computes musicnn's
own log-mel of the same files (``extractor.batch_data``), to compare the inputs as well.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

LAYERS = ("penultimate", "max_pool", "mean_pool")


# --- the TensorFlow side (runs in the TF venv: numpy, tensorflow, librosa only) -----------------
def tf_part(work: Path) -> None:
    import tensorflow as tf

    spec = json.loads((work / "job.json").read_text())
    package = Path(spec["package"])
    sys.path.insert(0, str(package.parent))
    tf.compat.v1.disable_eager_execution()
    from musicnn import configuration as config
    from musicnn import extractor, models

    batch = np.load(work / "patches.npy")
    tf.compat.v1.reset_default_graph()
    with tf.name_scope("model"):
        x = tf.compat.v1.placeholder(tf.float32, [None, batch.shape[1], config.N_MELS])
        is_training = tf.compat.v1.placeholder(tf.bool)
        out = models.define_model(x, is_training, "MSD_musicnn", len(config.MSD_LABELS))
        _, _, _, _, _, _, mean_pool, max_pool, penultimate = out
    sess = tf.compat.v1.Session()
    sess.run(tf.compat.v1.global_variables_initializer())
    tf.compat.v1.train.Saver().restore(sess, str(package / "MSD_musicnn") + "/")
    chunks = [  # in chunks: one front-end map of 1000 patches alone is ~10 GB
        sess.run([penultimate, max_pool, mean_pool], feed_dict={x: part, is_training: False})
        for part in np.array_split(batch, max(1, len(batch) // 50))
    ]
    got = [np.concatenate([c[i] for c in chunks]) for i in range(len(LAYERS))]
    np.savez(work / "tf.npz", **dict(zip(LAYERS, got, strict=True)))
    mels = [extractor.batch_data(f, batch.shape[1], batch.shape[1])[0] for f in spec["files"]]
    np.save(work / "tf_patches.npy", np.concatenate(mels).astype(np.float32))


# --- genrebench's side ---------------------------------------------------------------------------
def _figures(ours: np.ndarray, theirs: np.ndarray) -> dict[str, float]:
    diff = np.abs(ours.astype(np.float64) - theirs)
    sd_o, sd_t = ours.std(axis=0), theirs.std(axis=0)
    live = (sd_o > 1e-6) & (sd_t > 1e-6)
    r = np.array([np.corrcoef(ours[:, j], theirs[:, j])[0, 1] for j in np.flatnonzero(live)])
    return {
        "dims": ours.shape[1],
        "constant_dims": int((~live).sum()),
        "min_r": float(r.min()) if r.size else float("nan"),
        "max_abs_diff": float(diff.max()),
        "max_abs_diff_constant_dims": float(diff[:, ~live].max()) if (~live).any() else 0.0,
        "scale": float(np.abs(theirs).max()),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--tf-python", help="the TensorFlow venv's python (see above)")
    ap.add_argument("--data-dir", default=None, help="GTZAN folder (default: $GENREBENCH_DATA)")
    ap.add_argument("--clips", type=int, default=20, help="clips, spread over the genres")
    ap.add_argument("--tf-part", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.tf_part:
        tf_part(args.tf_part)
        return 0
    if not args.tf_python:
        ap.error("--tf-python is required (the TensorFlow venv's interpreter; see --help)")

    from benchmark.audio.decoding import load_clip
    from benchmark.data import Dataset
    from benchmark.features import _musicnn as mnn

    folder = mnn.checkpoint_dir()
    if folder is None:
        print(f"musicnn is not installed: {mnn.INSTALL_HINT}")
        return 1
    ds = Dataset.open(args.data_dir)
    tracks = ds.tracks[ds.tracks["audio_path"].notna()]
    chosen = tracks.groupby("genre", sort=True).head(max(1, args.clips // 10)).head(args.clips)
    files = [str(p) for p in chosen["audio_path"]]
    batch = np.concatenate(
        [
            mnn.patches(mnn.log_mel(c.samples))
            for c in (load_clip(f, mnn.SAMPLE_RATE, seconds=30.0) for f in files)
        ]
    )
    ours = mnn.embed_patches(batch)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        np.save(work / "patches.npy", batch)
        (work / "job.json").write_text(json.dumps({"package": str(folder.parent), "files": files}))
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
        subprocess.run([args.tf_python, __file__, "--tf-part", str(work)], check=True, env=env)
        with np.load(work / "tf.npz") as z:
            theirs = {k: z[k] for k in LAYERS}
        their_patches = np.load(work / "tf_patches.npy")

    print(f"{len(files)} clips, {len(batch)} patches of {batch.shape[1]} x {batch.shape[2]}")
    print(f"{'layer':<12} {'dims':>5} {'const':>5} {'min r':>10} {'1 - min r':>10} "
          f"{'max |diff|':>10} {'max |value|':>11}")  # fmt: skip
    for layer in LAYERS:
        f = _figures(ours[layer], theirs[layer])
        worst = max(f["max_abs_diff"], f["max_abs_diff_constant_dims"])
        print(
            f"{layer:<12} {f['dims']:>5} {f['constant_dims']:>5} {f['min_r']:>10.7f} "
            f"{1 - f['min_r']:>10.1e} {worst:>10.2e} {f['scale']:>11.3f}"
        )
    # the inputs: genrebench's decoding and log-mel vs musicnn's librosa.load + batch_data
    if their_patches.shape == batch.shape:
        d = np.abs(their_patches - batch)
        flat_r = np.corrcoef(their_patches.ravel(), batch.ravel())[0, 1]
        print(
            f"input log-mel vs musicnn's extractor.batch_data: max |diff| {d.max():.3g}, "
            f"mean |diff| {d.mean():.3g} (values up to {batch.max():.2f}), r {flat_r:.6f}"
        )
        emb = mnn.embed_patches(their_patches)["penultimate"]
        f = _figures(emb, ours["penultimate"])
        print(
            "penultimate (port) from musicnn's input vs from genrebench's: "
            f"min r {f['min_r']:.6f}, "
            f"max |diff| {f['max_abs_diff']:.3g}"
        )
    else:
        print(f"musicnn's batch_data gave {their_patches.shape} patches, ours {batch.shape}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
