"""The coordination board on SQLite and on a journal file's side file: claims that expire,
workers that leave, locks kept alive while held, the first benchmark record, packed manifests,
and finding a benchmark in a storage."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from benchmark.errors import ConfigError, GenrebenchError
from benchmark.execution.workers.board import benchmark_record, fold_key, open_board, pack, unpack
from benchmark.execution.workers.file_board import FileBoard
from benchmark.execution.workers.sql_board import SqlBoard


@pytest.fixture(params=["sql", "file"])
def board(request, tmp_path: Path):
    if request.param == "sql":
        b = SqlBoard(f"sqlite:///{tmp_path / 'board.db'}")
    else:
        b = FileBoard(tmp_path / "journal.log.genrebench.json")
    yield b
    b.close()


def test_a_claim_is_held_once_and_taken_over_when_its_holder_falls_silent(board) -> None:
    assert board.claim("b", "fold:1", "A", grace_s=0.4)
    assert not board.claim("b", "fold:1", "B", grace_s=0.4)
    assert board.claim("b", "fold:1", "A", grace_s=0.4)  # already ours
    board.beat("b", "A")
    time.sleep(0.6)  # A stops beating
    assert board.claim("b", "fold:1", "B", grace_s=0.4)
    assert not board.holds("b", "fold:1", "A")  # A may not write any more
    assert not board.finish("b", "fold:1", "A", "done")
    assert board.finish("b", "fold:1", "B", "done")
    row = board.claims("b")["fold:1"]
    assert row.done and row.worker == "B" and row.status == "done"
    assert not board.claim("b", "fold:1", "C", grace_s=0.0)  # done is done
    assert board.claims("other") == {}


def test_a_leaving_worker_releases_its_claims_and_locks_exclude(board) -> None:
    board.register_worker("b", "A", "host", 1, {})
    assert board.claim("b", "fold:2", "A", grace_s=60)
    board.end_worker("b", "A", "stopped")
    assert board.claim("b", "fold:2", "B", grace_s=60)  # at once, no grace to wait
    assert [w.state for w in board.workers("b")] == ["stopped"]
    with board.lock("b", "x", "A", grace_s=60):
        with pytest.raises(TimeoutError):
            with board.lock("b", "x", "B", grace_s=60, timeout_s=0.2):
                pass
    with board.lock("b", "x", "B", grace_s=60, timeout_s=1):
        pass


def test_the_first_benchmark_record_wins(board) -> None:
    first, created = board.register_benchmark("q", {"data_checksum": "a"}, {"jobs": [1, 2]})
    again, created_again = board.register_benchmark("q", {"data_checksum": "b"}, {"jobs": []})
    assert created and not created_again
    assert again.identity == {"data_checksum": "a"} and again.manifest == {"jobs": [1, 2]}
    assert board.benchmarks() == ["q"]


def test_a_held_lock_is_kept_alive_past_its_grace(board) -> None:
    """The holder refreshes a lock while it runs, with or without its worker's heartbeat."""
    with board.lock("b", "x", "A", grace_s=0.4):
        time.sleep(1.0)  # more than twice the grace
        assert not board.claim("b", "lock:x", "B", grace_s=0.4)
    assert board.claim("b", "lock:x", "B", grace_s=0.4)  # released on leaving


def test_manifests_are_packed_small_and_unpacked_as_they_were() -> None:
    manifest = {"splits": {"track_id": [f"blues.{i:05d}" for i in range(1000)]}, "n": 3}
    text = pack(manifest)
    assert text.isascii() and len(text) < len(json.dumps(manifest)) / 5
    assert unpack(text) == manifest
    assert (
        fold_key("t:csv_30s:lda:artist_kfold:fold0:abc")
        == "fold:t:csv_30s:lda:artist_kfold:fold0:abc"
    )


def test_a_benchmark_is_found_by_name_or_as_the_storage_s_only_one(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'board.db'}"
    board = open_board(url)
    assert isinstance(board, SqlBoard)
    with pytest.raises(GenrebenchError, match=r"holds 0 benchmarks \(none\): pass --config NAME"):
        benchmark_record(board, None, url)
    board.register_benchmark("a", {}, {})
    assert benchmark_record(board, None, url).name == "a"
    board.register_benchmark("b", {}, {})
    with pytest.raises(GenrebenchError, match=r"holds 2 benchmarks \(a, b\)"):
        benchmark_record(board, None, url)
    assert benchmark_record(board, "b", url).name == "b"
    with pytest.raises(GenrebenchError, match=r"no benchmark 'c' in .* \(it holds: a, b\)"):
        benchmark_record(board, "c", url)
    board.close()


def test_a_storage_that_cannot_hold_the_board_is_a_config_error() -> None:
    with pytest.raises(
        ConfigError, match=r"cannot open the coordination tables in nosuch://u:\*\*\*@h"
    ):
        open_board("nosuch://u:pw@h/db")
