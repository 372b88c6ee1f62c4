"""The command line: bad input gives one clear error line and exit code 2, never a traceback."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from benchmark.cli import main


def _invoke(*args: str, env: dict[str, str] | None = None):
    result = CliRunner().invoke(main, list(args), env=env or {"GENREBENCH_DATA": ""})
    return result, result.output  # click >= 8.2: stdout and stderr, interleaved


def _assert_one_line_error(result, text: str, match: str) -> None:
    assert result.exit_code == 2, text
    assert "Traceback" not in text
    errors = [line for line in text.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, text
    assert match in text, text


def test_missing_data_folder_is_one_line_with_the_download_hint(tmp_path) -> None:
    result, text = _invoke("run", "--config", "smoke", "--data-dir", str(tmp_path / "nope"))
    _assert_one_line_error(result, text, "does not exist")
    assert "genrebench download" in text


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["--config", "nope"], "unknown config 'nope'"),
        (["--config", "smoke", "--models", "xgboost"], "unknown family 'xgboost'"),
        (["--config", "smoke", "--features", "mfcc99"], "unknown feature set 'mfcc99'"),
        (["--config", "smoke", "--protocol", "loo"], "unknown protocol 'loo'"),
    ],
)
def test_unknown_config_family_feature_set_and_protocol(fake_gtzan, args, match) -> None:
    result, text = _invoke("run", *args, "--data-dir", str(fake_gtzan))
    _assert_one_line_error(result, text, match)


def _set_cell(text: str, row: int, col: int, value: str) -> str:
    lines = text.splitlines()
    cells = lines[row].split(",")
    cells[col] = value
    lines[row] = ",".join(cells)
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda s: s.replace("rms_mean,", "", 1), "missing column(s) rms_mean"),
        (lambda s: _set_cell(s, 2, 5, "abc"), "non-numeric value 'abc'"),
        (lambda s: _set_cell(s, 1, -1, "bluez"), "unknown genre label 'bluez'"),
    ],
)
def test_malformed_csv_is_one_line_naming_the_problem(fake_gtzan, tmp_path, edit, match) -> None:
    data = tmp_path / "g"
    shutil.copytree(fake_gtzan, data)
    csv = data / "features_30_sec.csv"
    csv.write_text(edit(csv.read_text()))
    result, text = _invoke(
        "run",
        "--config",
        "smoke",
        "--no-tracking",
        "--data-dir",
        str(data),
        "--results-dir",
        str(tmp_path / "r"),
    )
    _assert_one_line_error(result, text, match)


def test_data_check_reports_counts_and_list_shows_every_family(fake_gtzan) -> None:
    result, text = _invoke("data", "check", "--data-dir", str(fake_gtzan))
    assert result.exit_code == 0, text
    assert "80 tracks" in text and "features_30_sec.csv: 80 rows" in text
    result, text = _invoke("list")
    assert result.exit_code == 0
    for name in ("logreg", "svm_poly", "lightgbm", "seed_mlp", "artist_kfold", "quick"):
        assert name in text


def test_run_prints_a_summary_table_per_protocol(fake_gtzan, tmp_path: Path) -> None:
    result, text = _invoke(
        "run",
        "--config",
        "smoke",
        "--no-tracking",
        "--data-dir",
        str(fake_gtzan),
        "--results-dir",
        str(tmp_path),
        "--trials",
        "2",
    )
    assert result.exit_code == 0, text
    assert "protocol: fault_filtered" in text and "logreg" in text and "(baseline)" in text
    assert (tmp_path / "smoke" / "results.parquet").is_file()
    # one split: no spread and no difference of the baseline with itself are printed
    baseline_row = next(line for line in text.splitlines() if "(baseline)" in line)
    assert "0.000" not in baseline_row and "+" not in baseline_row, baseline_row
    # not a terminal: a plain line per finished fold instead of a progress bar
    folds = [line for line in text.splitlines() if line.startswith("[1/2] ")]
    assert folds and "fault_filtered fold 0: done acc" in folds[0], text


def test_fold_log_prints_a_summary_line_while_the_run_lasts() -> None:
    import io
    import time

    from rich.console import Console

    from benchmark.cli import FoldLog

    buf = io.StringIO()
    log = FoldLog(Console(file=buf, width=200), every_s=0.05)
    log.start(4)
    log.fold("csv_30s · lda · artist_kfold fold 0: done acc 0.500", 3)
    time.sleep(0.3)
    log.stop()
    lines = buf.getvalue().splitlines()
    assert lines[0] == "[1/4] csv_30s · lda · artist_kfold fold 0: done acc 0.500"
    assert any(ln.startswith("progress: 1/4 folds, 3 trials, ") and "left" in ln for ln in lines)
    # with the scheduler's cost-model estimate, the time left is that estimate
    buf = io.StringIO()
    log = FoldLog(Console(file=buf, width=200), every_s=0.05)
    log.start(4, lambda: 150.0, lambda: 7)
    time.sleep(0.3)
    log.stop()
    # and the trials are the finished folds' plus those the running studies have so far
    assert "progress: 0/4 folds, 7 trials, " in buf.getvalue()
    assert "about 2.5 min left" in buf.getvalue()


def test_log_records_are_dated_unwrapped_lines_when_not_a_terminal(fake_gtzan, tmp_path) -> None:
    """`nohup`, `docker compose logs`: the whole command, its stderr a pipe; each log record is
    one line with its date, however long (a console would wrap it at 80 columns)."""
    import re
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "benchmark.cli", "run", "--config", "smoke", "--dry-run"]
    cmd += ["--data-dir", str(fake_gtzan), "--results-dir", str(tmp_path), "--no-tracking"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    records = [ln for ln in proc.stderr.splitlines() if " INFO " in ln]
    assert records, proc.stderr
    dated = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d INFO feature set \S+ \(tabular\): .* s$")
    assert any(dated.match(ln) for ln in records), records
    header = next(ln for ln in proc.stderr.splitlines() if ln.startswith("benchmark smoke: "))
    assert header.endswith("job(s)"), header  # the run's header is one line too
