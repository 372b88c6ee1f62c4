"""The leaderboard in a real browser: does the page fit the screen it is opened on?

A page that is wider than the window scrolls sideways as a whole, and whatever lies beyond the
right edge (the verdict column, half a figure) is easy to miss. :func:`check_fit` opens a page in
headless Chromium (Debian's ``/usr/bin/chromium``, driven by Playwright, the ``test`` extra) at
each width and measures what a reader would hit: the document's width against the viewport's,
each table scroll box (is it scrollable, do its pinned columns stay in view, can its last column
be reached), and each visible figure (does it fit its box, how small its smallest text is drawn).

``tests/integration/test_ui.py`` asserts on it for a representative page;
``benchmarks/leaderboard_width.py`` runs it on any results folder (``results/quick``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "CHROMIUM",
    "CHROMIUM_ARGS",
    "WIDTHS",
    "Figure",
    "Fit",
    "ScrollBox",
    "check_fit",
]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
#: a phone (iPhone 12 to 15) and a laptop window
WIDTHS = (390, 1400)
VIEWPORT_HEIGHT = 900


@dataclass(frozen=True)
class ScrollBox:
    """One ``.table-scroll`` box: its table, its visible and its full width (px), how many
    columns of its first row show (at least in part) before it is scrolled, and, scrolled all
    the way right, whether the pinned cells still lie inside the box and the last column can be
    seen."""

    label: str
    client_width: int
    scroll_width: int
    visible_columns: int
    n_pinned: int
    pinned_in_view: bool
    last_column_reachable: bool

    @property
    def scrolls(self) -> bool:
        return self.scroll_width > self.client_width


@dataclass(frozen=True)
class Figure:
    """One visible figure (an inline SVG): its drawn width against its box's inner width, and
    the smallest font size (px) any of its text is drawn at after scaling."""

    label: str
    width: float
    box_width: float
    box_scrolls: bool
    min_font_px: float


@dataclass(frozen=True)
class Fit:
    """What one window width showed."""

    width: int
    document_width: int
    boxes: list[ScrollBox]
    figures: list[Figure]
    screenshot: Path | None = None

    @property
    def fits(self) -> bool:
        return self.document_width <= self.width


# measured in the page: everything the dataclasses hold, as plain JSON
_MEASURE = """
() => {
  const label = (el) => {
    const cap = el.querySelector("caption");
    if (cap) return cap.textContent.trim().slice(0, 60);
    const det = el.closest("details");
    if (det && det.querySelector("summary")) {
      return det.querySelector("summary").textContent.trim().slice(0, 80);
    }
    let prev = el.previousElementSibling;
    while (prev && !/^H[1-4]$/.test(prev.tagName)) prev = prev.previousElementSibling;
    const sec = el.closest("section");
    const head = prev || (sec && sec.querySelector("h2"));
    const cls = (el.querySelector("table") || el).className;
    return ((head ? head.textContent.trim() : "") + " [" + cls + "]").slice(0, 80);
  };
  const boxes = [...document.querySelectorAll(".table-scroll")].filter(
    (b) => b.getClientRects().length > 0).map((b) => {
    const out = {label: label(b), client_width: b.clientWidth, scroll_width: b.scrollWidth};
    const saved = b.scrollLeft;
    const row = b.querySelector("tbody tr") || b.querySelector("tr");
    b.scrollLeft = 0;
    const right = b.getBoundingClientRect().right;
    out.visible_columns = row ? [...row.cells].filter(
      (c) => c.getBoundingClientRect().left < right - 8).length : 0;
    b.scrollLeft = b.scrollWidth;
    const box = b.getBoundingClientRect();
    const pinned = row ? [...row.cells].filter((c) => c.classList.contains("pin")) : [];
    out.n_pinned = pinned.length;
    out.pinned_in_view = pinned.every((c) => {
      const r = c.getBoundingClientRect();
      return r.left >= box.left - 1 && r.right <= box.right + 1;
    });
    const last = row && row.cells.length ? row.cells[row.cells.length - 1] : null;
    out.last_column_reachable = !last || last.getBoundingClientRect().right <= box.right + 1;
    b.scrollLeft = saved;
    return out;
  });
  const figures = [...document.querySelectorAll(".figure svg")].filter(
    (s) => s.getClientRects().length > 0 && !s.parentElement.closest("svg")).map((s) => {
    const fig = s.closest(".figure");
    const style = getComputedStyle(fig);
    const inner = fig.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
    let min = Infinity;
    for (const t of s.querySelectorAll("text")) {
      if (!t.getClientRects().length) continue;
      const m = t.getScreenCTM();
      const size = parseFloat(getComputedStyle(t).fontSize) * Math.hypot(m.a, m.b);
      if (size > 0) min = Math.min(min, size);
    }
    const title = s.querySelector("title");
    return {
      label: (fig.id || (title ? title.textContent : "figure")).slice(0, 80),
      width: s.getBoundingClientRect().width,
      box_width: inner,
      box_scrolls: fig.scrollWidth > fig.clientWidth + 1,
      min_font_px: isFinite(min) ? min : 0,
    };
  });
  return {document_width: document.documentElement.scrollWidth, boxes, figures};
}
"""


def check_fit(
    page: Path, widths: Sequence[int] = WIDTHS, *, screenshots: Path | None = None
) -> list[Fit]:
    """Open ``page`` (an HTML file) in headless Chromium at each of ``widths`` and measure it;
    with ``screenshots``, a full-page PNG ``leaderboard-<width>.png`` is written there too."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:  # the `test` extra
        raise RuntimeError("the width check needs Playwright: pip install -e '.[test]'") from exc
    if not CHROMIUM.exists():
        raise RuntimeError(f"{CHROMIUM} is absent (Debian package `chromium`)")
    url = Path(page).resolve().as_uri()
    fits: list[Fit] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS, timeout=60_000
        )
        try:
            for width in widths:
                context = browser.new_context(
                    viewport={"width": width, "height": VIEWPORT_HEIGHT}, device_scale_factor=1
                )
                tab = context.new_page()
                tab.goto(url, wait_until="load", timeout=30_000)
                raw: dict[str, Any] = tab.evaluate(_MEASURE)
                shot = None
                if screenshots is not None:
                    screenshots.mkdir(parents=True, exist_ok=True)
                    shot = screenshots / f"leaderboard-{width}.png"
                    tab.screenshot(path=str(shot), full_page=True)
                context.close()
                fits.append(
                    Fit(
                        width=width,
                        document_width=int(raw["document_width"]),
                        boxes=[ScrollBox(**b) for b in raw["boxes"]],
                        figures=[Figure(**f) for f in raw["figures"]],
                        screenshot=shot,
                    )
                )
        finally:
            browser.close()
    return fits
