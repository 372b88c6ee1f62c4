"""Track ids from file and CSV names (``blues.00000.wav``, ``blues00000.png``, segments
``.K``): one reading, so that every feature set groups a track's rows under the same id."""

from __future__ import annotations

import re

from benchmark.errors import DataError

AUDIO_EXTENSIONS = (".wav", ".au", ".flac", ".ogg", ".mp3")

# "blues.00000.wav", "blues.00000.3.wav" (3 s segment), "blues00000.png" (Kaggle image name)
_CLIP_RE = re.compile(r"^(?P<genre>[A-Za-z_-]+)\.?(?P<num>\d+)(?:\.(?P<seg>\d+))?$")


def _media_stem(name: str) -> str:
    """``name`` without its audio or image extension (case-insensitive)."""
    for ext in (*AUDIO_EXTENSIONS, ".png"):
        if name.lower().endswith(ext):
            return name[: -len(ext)]
    return name


def track_id_from_name(name: str) -> tuple[str, int | None]:
    """``blues.00000.wav`` → (``blues.00000``, None); ``blues.00000.3.wav`` → (…, 3);
    ``blues00000.png`` → (``blues.00000``, None)."""
    m = _CLIP_RE.match(_media_stem(name))
    if not m:
        raise DataError(
            f"cannot read a track id from file name {name!r} (expected genre.NNNNN.wav)"
        )
    seg = m.group("seg")
    return f"{m.group('genre')}.{m.group('num')}", int(seg) if seg is not None else None


def track_id_in_class(name: str, label: str, *, segmented: bool = False) -> tuple[str, int | None]:
    """Track id of a file whose class is known (its folder, or its CSV label), for datasets
    with any class names (``classes: auto``): ``label.NNNNN`` for GTZAN-style names of that
    class, else ``label.<file stem>`` (``lofi/night drive.mp3`` → ``lofi.night drive``).
    Segmented CSV rows end in ``.K`` (``night drive.3.wav``)."""
    if "." in label or "/" in label or not label.strip():
        raise DataError(f"class name {label!r} cannot be used: no dots, slashes or blank names")
    stem = _media_stem(name)
    m = _CLIP_RE.match(stem)
    if m and m.group("genre") == label:
        seg = m.group("seg")
        return f"{label}.{m.group('num')}", int(seg) if seg is not None else None
    seg = None
    if segmented:
        base, _, tail = stem.rpartition(".")
        if base and tail.isdigit():
            stem, seg = base, int(tail)
    if not stem.strip():
        raise DataError(f"cannot read a track id from file name {name!r}")
    return f"{label}.{stem}", seg
