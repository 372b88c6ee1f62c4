"""The board of a journal-file storage (:class:`FileBoard`): a JSON file beside the journal,
changed under Optuna's journal file lock, so that processes on one file system take each claim
once and lose none of each other's writes."""

from __future__ import annotations

import json
import multiprocessing
import threading
from pathlib import Path

from benchmark.execution.workers.board import open_board
from benchmark.execution.workers.file_board import FileBoard


def _claim(path: str, worker: str, start, results) -> None:
    board = FileBoard(Path(path))
    start.wait()
    results.put((worker, [board.claim("b", f"fold:{i}", worker, grace_s=60) for i in range(5)]))


def test_processes_racing_for_the_same_claims_get_each_once(tmp_path: Path) -> None:
    path = str(tmp_path / "j.log.genrebench.json")
    ctx = multiprocessing.get_context("spawn")
    start, results = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_claim, args=(path, w, start, results)) for w in ("A", "B", "C")]
    for p in procs:
        p.start()
    start.set()
    won = dict(results.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(timeout=60)
    assert [sum(won[w][i] for w in won) for i in range(5)] == [1] * 5  # one holder per claim
    held = {k: row.worker for k, row in FileBoard(Path(path)).claims("b").items()}
    assert held == {f"fold:{i}": next(w for w in won if won[w][i]) for i in range(5)}


def test_concurrent_writers_lose_none_of_each_others_changes(tmp_path: Path) -> None:
    path = tmp_path / "j.log.genrebench.json"

    def work(worker: str) -> None:
        board = FileBoard(path)  # each writer its own opener, as each worker has
        board.register_worker("b", worker, "host", 1, {"n": worker})
        for i in range(10):
            assert board.claim("b", f"{worker}:{i}", worker, grace_s=60)
            board.beat("b", worker, activity=f"step {i}")

    threads = [threading.Thread(target=work, args=(f"w{n}",)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    board = FileBoard(path)
    assert len(board.claims("b")) == 40
    assert sorted(w.worker for w in board.workers("b")) == ["w0", "w1", "w2", "w3"]
    assert {w.activity for w in board.workers("b")} == {"step 9"}
    state = json.loads(path.read_text())  # a plain JSON file, no temporary one left beside it
    assert set(state) == {"benchmarks", "claims", "workers"}
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_a_journal_url_opens_the_file_board_beside_the_journal(tmp_path: Path) -> None:
    board = open_board(f"journal://{tmp_path / 'shared' / 'j.log'}")  # journal:///tmp/...
    assert isinstance(board, FileBoard)
    assert board.path == tmp_path / "shared" / "j.log.genrebench.json"
    record, created = board.register_benchmark("q", {"data_checksum": "a"}, {"jobs": [1]})
    assert created and FileBoard(board.path).benchmark("q") == record
