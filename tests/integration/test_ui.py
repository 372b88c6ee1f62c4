"""The leaderboard in a real browser, and the MLflow UI over HTTP.

* Headless Chromium (Debian's ``chromium`` package, driven by Playwright) opens
  ``leaderboard.html``: no console error, no request other than the file itself, the sort buttons
  work, and a full-page screenshot shows the page.
* At a phone's width (390 px) and a laptop's (1,400 px) the page is no wider than the window
  (:func:`benchmark.report.browser.check_fit`) on a results folder with many long-named pairs
  (:func:`helpers.widened_copy` of the real run): wide tables scroll in their own box with the
  pair's name pinned, figures fit their box and keep their text readable.
  ``benchmarks/leaderboard_width.py`` runs the same check on any results folder.
* ``genrebench ui`` starts ``mlflow ui`` on a free loopback port against the benchmark's tracking
  store; its REST API lists the parent runs (one per pair) with their trials nested below.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
from helpers import widened_copy

from benchmark.report import write_report
from benchmark.report.browser import CHROMIUM, CHROMIUM_ARGS, WIDTHS, check_fit


@pytest.fixture(scope="module")
def bench(report_bench: Path) -> Path:
    return report_bench


def test_leaderboard_in_headless_chromium(bench: Path, tmp_path: Path) -> None:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is absent (Debian package `chromium`; .ci/run installs it)")
    from PIL import Image
    from playwright.sync_api import sync_playwright

    page_path = write_report(bench)
    url = page_path.resolve().as_uri()
    requests: list[str] = []
    blocked: list[str] = []
    problems: list[str] = []
    shot = tmp_path / "leaderboard.png"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS, timeout=60_000
        )
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900})

            def route(r) -> None:  # anything but the page itself is recorded and refused
                if r.request.url == url:
                    r.continue_()
                else:
                    blocked.append(r.request.url)
                    r.abort()

            context.route("**/*", route)
            page = context.new_page()
            page.on("request", lambda r: requests.append(r.url))
            page.on("console", lambda m: m.type == "error" and problems.append(m.text))
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.on("requestfailed", lambda r: problems.append(f"failed: {r.url}"))
            page.goto(url, wait_until="load", timeout=30_000)

            assert page.title().startswith("genrebench leaderboard")
            table = page.locator("table.leaderboard").first
            assert table.locator("tbody tr").count() == 3 + 3  # 3 pairs, 3 ensembles
            assert page.locator("table.ensembles tbody tr").count() == 2 * 3  # per protocol
            # sort by family, ascending then descending: the script works
            header = table.locator("thead th").nth(2)
            header.locator("button").click()
            assert header.get_attribute("aria-sort") == "ascending"
            families = table.locator("tbody tr td:nth-child(3)").all_inner_texts()
            names = [f.split()[0] for f in families]
            assert names == sorted(names)
            header.locator("button").click()
            assert header.get_attribute("aria-sort") == "descending"
            names = [
                f.split()[0] for f in table.locator("tbody tr td:nth-child(3)").all_inner_texts()
            ]
            assert names == sorted(names, reverse=True)
            # plots are rendered (inline SVG has a size)
            box = page.locator("#cd-diagram .wide-only svg").bounding_box()
            assert box is not None and box["width"] > 200 and box["height"] > 50
            assert page.locator("svg.chart").count() >= 2
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()

    assert problems == [], problems
    assert blocked == [] and requests == [url], requests
    assert shot.is_file() and shot.stat().st_size > 50_000
    with Image.open(shot) as img:
        assert img.width == 1280 and img.height > 2000
        colors = img.convert("RGB").resize((320, img.height // 4)).getcolors(maxcolors=1 << 16)
        assert colors is None or len(colors) > 100  # not a blank page


def test_leaderboard_fits_a_phone_and_a_laptop(bench: Path, tmp_path: Path) -> None:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is absent (Debian package `chromium`; .ci/run installs it)")
    wide = widened_copy(bench, tmp_path / "wide")  # 12 families x 2 feature sets, 3 ensembles
    # and just above the width where the figures switch to their wide drawing (the CSS's 1000)
    fits = check_fit(write_report(wide), (*WIDTHS, 1001))
    assert [f.width for f in fits] == [390, 1400, 1001]
    for fit in fits:
        where = f"at {fit.width} px"
        assert fit.document_width <= fit.width, where  # the page never scrolls sideways
        main = [b for b in fit.boxes if b.label.startswith("Leaderboard under")]
        assert len(main) == 2, (where, [b.label for b in fit.boxes])
        for b in fit.boxes:  # scrolled to its end, a box still shows its pinned names and its
            assert b.pinned_in_view and b.last_column_reachable, (where, b)  # last column
            assert b.client_width <= fit.width, (where, b)
        for b in main:
            assert b.n_pinned == 2, (where, b)  # feature set and family stay in view
        for fig in fit.figures:  # drawn inside its box, text no smaller than 9 px
            assert fig.width <= fig.box_width + 1 and not fig.box_scrolls, (where, fig)
            assert fig.min_font_px >= 9, (where, fig)
        assert any(f.label == "cd-diagram" for f in fit.figures), where
        assert sum(f.label.startswith("Accuracy per pair") for f in fit.figures) == 2, where
    phone = fits[0]
    blocks = next(b for b in phone.boxes if b.label.startswith("Blocks"))
    assert blocks.scrolls and blocks.n_pinned == 1  # 12 families: wider than a phone
    for b in (b for b in phone.boxes if b.label.startswith("Leaderboard under")):
        assert b.scrolls  # 12 columns scroll in their box, and more than rank, feature set and
        assert b.visible_columns >= 4, b  # family show before it is scrolled


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _api(base: str, path: str, body: dict | None = None, *, timeout: float = 15) -> dict:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        base + path,
        data=data,
        headers={"Content-Type": "application/json"},
        method="GET" if body is None else "POST",
    )
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read().decode())


def _search(base: str, experiment_id: str, flt: str) -> list[dict]:
    runs: list[dict] = []
    token = None
    while True:
        body = {"experiment_ids": [experiment_id], "filter": flt, "max_results": 1000}
        if token:
            body["page_token"] = token
        out = _api(base, "/api/2.0/mlflow/runs/search", body)
        runs += out.get("runs", [])
        token = out.get("next_page_token")
        if not token:
            return runs


def test_genrebench_ui_serves_parent_runs_with_nested_trials(bench: Path, tmp_path: Path) -> None:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "ui.log"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "benchmark.cli", "ui", str(bench), "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,  # its own process group: stopped as a whole below
        )
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                pytest.fail(f"genrebench ui exited with {proc.returncode}:\n{log.read_text()}")
            try:
                with urllib.request.urlopen(base + "/health", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"mlflow ui did not answer within 90 s:\n{log.read_text()}")
            time.sleep(0.5)
        assert f"http://127.0.0.1:{port}" in log.read_text()

        exp = _api(base, "/api/2.0/mlflow/experiments/get-by-name?experiment_name=rep")
        exp_id = exp["experiment"]["experiment_id"]
        runs = _search(base, exp_id, "")
        tags = [{t["key"]: t["value"] for t in r["data"].get("tags", [])} for r in runs]
        parents = {
            r["info"]["run_name"]: (r, t)
            for r, t in zip(runs, tags, strict=True)
            if "mlflow.parentRunId" not in t
        }
        results = pd.read_parquet(bench / "results.parquet")
        pairs = results[["feature_set", "family", "protocol"]].drop_duplicates()
        expected = {f"{r.feature_set} · {r.family} · {r.protocol}" for r in pairs.itertuples()}
        assert set(parents) == expected
        for name, (run, _) in parents.items():
            fs, fam, proto = name.split(" · ")
            rows = results[
                (results["feature_set"] == fs)
                & (results["family"] == fam)
                & (results["protocol"] == proto)
            ]
            metrics = {m["key"]: m["value"] for m in run["data"].get("metrics", [])}
            assert metrics["accuracy_mean"] == pytest.approx(rows["accuracy"].mean())
            flt = f"tags.`mlflow.parentRunId` = '{run['info']['run_id']}'"
            children = _search(base, exp_id, flt)
            expected_trials = int((rows["n_trials"] + rows["n_pruned"]).sum())
            assert len(children) == expected_trials, name  # dummy is fixed: no trials
            if expected_trials:
                assert all(c["info"]["run_name"].startswith("fold ") for c in children)
        # the runs' artifacts (written next to mlflow.db) are served too
        some = next(r for n, (r, _) in parents.items() if not n.startswith("ensemble"))
        some = some["info"]["run_id"]
        listing = _api(base, f"/api/2.0/mlflow/artifacts/list?run_id={some}")
        assert "search_space.json" in {f["path"] for f in listing.get("files", [])}
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        # uvicorn workers may outlive the server's main process briefly: clean the group
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
