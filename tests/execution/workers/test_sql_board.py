"""The board of a relational storage (:class:`SqlBoard`): three tables beside Optuna's in the
same database, timed by the database's clock, each change one atomic statement, so that many
openers racing for a claim or a benchmark record get it once."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import sqlalchemy as sa

from benchmark.execution.workers.sql_board import SqlBoard
from benchmark.storage import open_storage


def test_the_tables_sit_beside_optunas_in_the_same_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    open_storage(url)
    board = SqlBoard(url)
    tables = set(sa.inspect(board.engine).get_table_names())
    assert {"studies", "trials"} <= tables
    assert {"genrebench_benchmarks", "genrebench_claims", "genrebench_workers"} <= tables
    assert abs(board.now() - time.time()) < 5  # the database's clock, in Unix seconds
    board.close()


def test_openers_racing_for_one_claim_and_one_record_get_each_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'board.db'}"
    SqlBoard(url).close()  # the tables exist before the race

    def race(worker: str) -> tuple[bool, bool]:
        board = SqlBoard(url)
        try:
            claimed = board.claim("b", "finalize", worker, grace_s=60)
            _, created = board.register_benchmark("b", {"by": worker}, {"jobs": []})
            return claimed, created
        finally:
            board.close()

    workers = [f"w{i}" for i in range(6)]
    with ThreadPoolExecutor(len(workers)) as pool:
        won = dict(zip(workers, pool.map(race, workers), strict=True))
    claimed = [w for w, (c, _) in won.items() if c]
    created = [w for w, (_, c) in won.items() if c]
    assert len(claimed) == 1 and len(created) == 1
    board = SqlBoard(url)
    assert board.claims("b")["finalize"].worker == claimed[0]
    record = board.benchmark("b")
    assert record is not None and record.identity == {"by": created[0]}
    board.close()
