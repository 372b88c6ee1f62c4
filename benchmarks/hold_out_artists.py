"""Split a GTZAN folder's audio clips by artist: a training folder and a held-out labelled folder.

    python benchmarks/hold_out_artists.py --data-dir PATH --out DIR [--keep 0.6]

What ``genrebench evaluate``'s worked example (docs/evaluate.md) starts from: ``DIR/train`` is a
GTZAN-layout folder (links to the Kaggle CSV, the artist index and the splits, and to the clips
of the artists kept) to run a benchmark on with ``tracks: with_audio``; ``DIR/held_out`` is a
``<genre>/<file>`` folder of the other artists' clips, never seen by that benchmark. Per genre,
artists are held out (fewest clips first, then by a hash of the name, so the choice is fixed and
looks at no score) while at least ``--keep`` of the genre's clips stay for training; a genre whose
clips all come from one artist stays whole in training (holding it out would leave none to
learn it from). Files are symbolic links: nothing is copied.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
from pathlib import Path

from benchmark.data import Dataset

#: what the training folder links to besides the audio (those that exist)
LINKED = ("features_30_sec.csv", "features_3_sec.csv", "metadata", "splits")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=os.environ.get("GENREBENCH_DATA"))
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--keep", type=float, default=0.6, help="share of a genre kept to train")
    args = parser.parse_args()
    ds = Dataset.open(args.data_dir, tracks="with_audio")
    t = ds.tracks.assign(group=ds.artist_groups(ds.tracks["track_id"]))
    train, held_out = args.out / "train", args.out / "held_out"
    if train.exists() or held_out.exists():
        sys.exit(f"{args.out} holds train/ or held_out/ already: give an empty folder")
    train.mkdir(parents=True)
    for name in LINKED:
        if (ds.root / name).exists():
            (train / name).symlink_to((ds.root / name).resolve())
    held: set[str] = set()
    for _genre, rows in t.groupby("genre", sort=True):
        sizes = rows.groupby("group").size()
        order = sorted(
            sizes.index, key=lambda a: (sizes[a], hashlib.sha256(str(a).encode()).hexdigest())
        )
        kept = len(rows)
        for artist in order:
            if kept - sizes[artist] >= args.keep * len(rows):
                held.add(artist)
                kept -= int(sizes[artist])
    audio = ds.manifest.files["audio"]
    for _, r in t.iterrows():
        src = Path(r["audio_path"])
        side = held_out if r["group"] in held else train / audio
        dest = side / str(r["genre"]) / src.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.symlink_to(src.resolve())
    for genre, rows in t.groupby("genre", sort=True):
        n_held = int(rows["group"].isin(held).sum())
        print(f"{genre:12} train {len(rows) - n_held:3}  held out {n_held:3}")
    print(f"training folder {train}; held-out labelled folder {held_out}")


if __name__ == "__main__":
    main()
