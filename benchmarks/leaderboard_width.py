"""Does a leaderboard fit the screen? The Chromium width check of ``tests/integration/test_ui.py``
on any results folder, e.g. a finished ``genrebench run --config quick``:

    python benchmarks/leaderboard_width.py results/quick [--widths 390,1400] [--keep-page] \\
        [--screenshots DIR] [--docs docs/img]

The page is written again from the folder's files (``genrebench report``) unless ``--keep-page``
(or the argument is an ``.html`` file). Per width it prints the document's width against the
window's, every table box (visible / full width, columns shown before scrolling, pinned columns
in view when scrolled to the end, last column reachable) and every visible figure (drawn width
against its box, smallest text in px), then PASS or FAIL: the page is no wider than the window,
every box keeps its pinned names and reaches its last column, every figure fits its box. The exit
status is 1 on any FAIL. ``--screenshots`` keeps full-page PNGs; ``--docs`` writes the small
screenshots of ``docs/results.md`` (the top of the page; the laptop's scaled to 1,000 px, both
as 256-colour PNGs).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from benchmark.report import LEADERBOARD, write_report
from benchmark.report.browser import WIDTHS, Fit, check_fit

#: the docs' screenshots: how much of the page's top they show (px), and the laptop's width
DOCS_HEIGHT = {390: 1500, 1400: 1250}
DOCS_WIDTH = 1000


def _problems(fit: Fit) -> list[str]:
    out = []
    if not fit.fits:
        out.append(f"the page is {fit.document_width} px wide in a {fit.width} px window")
    for b in fit.boxes:
        if not (b.pinned_in_view and b.last_column_reachable):
            out.append(
                f"box {b.label!r}: pinned in view {b.pinned_in_view}, last column "
                f"reachable {b.last_column_reachable}"
            )
    for f in fit.figures:
        if f.width > f.box_width + 1 or f.box_scrolls:
            out.append(f"figure {f.label!r}: {f.width:.0f} px in a {f.box_width:.0f} px box")
    return out


def _report(fit: Fit) -> bool:
    print(f"\n== {fit.width} px: document {fit.document_width} px wide")
    print("   boxes (visible/full px, columns shown, pinned, pinned in view, last reachable):")
    for b in fit.boxes:
        print(
            f"   {b.client_width:5d}/{b.scroll_width:<5d} {b.visible_columns:3d} cols "
            f"{b.n_pinned} pinned {'ok' if b.pinned_in_view else 'LOST':4s} "
            f"{'ok' if b.last_column_reachable else 'CUT':4s} {b.label[:70]!r}"
        )
    print("   figures (drawn / box px, smallest text px):")
    for f in fit.figures:
        print(f"   {f.width:6.0f}/{f.box_width:<6.0f} {f.min_font_px:5.1f} px  {f.label[:70]!r}")
    problems = _problems(fit)
    for p in problems:
        print(f"   FAIL: {p}")
    print(f"   {'PASS' if not problems else 'FAIL'} at {fit.width} px")
    return not problems


def _docs_shot(shot: Path, width: int, dest: Path) -> Path:
    """The top of a full-page screenshot, small enough for the docs."""
    from PIL import Image

    dest.mkdir(parents=True, exist_ok=True)
    out = dest / f"leaderboard-{width}.png"
    with Image.open(shot) as img:
        top = img.convert("RGB").crop(
            (0, 0, img.width, min(img.height, DOCS_HEIGHT.get(width, 1200)))
        )
        if top.width > DOCS_WIDTH:
            top = top.resize(
                (DOCS_WIDTH, round(top.height * DOCS_WIDTH / top.width)), Image.LANCZOS
            )
        top.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(out, optimize=True)
    print(f"docs screenshot: {out} ({out.stat().st_size / 1024:.0f} KB)")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("target", type=Path, help="a results folder, or a leaderboard .html file")
    ap.add_argument("--widths", default=",".join(map(str, WIDTHS)))
    ap.add_argument("--keep-page", action="store_true", help="check the folder's page as it is")
    ap.add_argument("--screenshots", type=Path, help="keep full-page PNGs here")
    ap.add_argument("--docs", type=Path, help="write the docs' small screenshots here")
    args = ap.parse_args(argv)

    target = args.target
    if target.suffix == ".html":
        page = target
    elif args.keep_page:
        page = target / LEADERBOARD
    else:
        page = write_report(target)
    widths = [int(w) for w in args.widths.split(",")]
    print(f"checking {page} at {', '.join(f'{w} px' for w in widths)}")
    with tempfile.TemporaryDirectory() as tmp:
        shots = args.screenshots or (Path(tmp) if args.docs else None)
        fits = check_fit(page, widths, screenshots=shots)
        ok = all([_report(fit) for fit in fits])
        if args.docs:
            for fit in fits:
                assert fit.screenshot is not None
                _docs_shot(fit.screenshot, fit.width, args.docs)
    print(f"\n{'PASS' if ok else 'FAIL'}: {page}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
