"""The cost model: fit times measured on the data and scaled by rows, and the makespan of jobs
packed onto processes."""

from __future__ import annotations

import pytest

from benchmark.execution.cost import FitCost, makespan, measure_fit
from benchmark.testing import make_tabular_problem
from benchmark.tuning.search_space import load_search_space


def test_fit_cost_is_measured_on_the_data_and_scales_with_rows() -> None:
    X, y = make_tabular_problem(n_samples=400, n_features=8, n_classes=4, seed=0)
    cost = measure_fit("logreg", load_search_space("logreg"), X, y, rows=300)
    assert cost.seconds > 0 and cost.rows == 300 and 0.5 <= cost.exponent <= 2
    assert cost.at(600) > cost.at(300) > cost.at(150) > 0
    assert FitCost(2.0, 100, 2.0).at(200) == pytest.approx(8.0)


def test_makespan_packs_jobs_onto_the_first_free_process() -> None:
    assert makespan([4, 3, 2, 1], 2) == 5
    assert makespan([1, 2, 3, 4], 2) == 6  # shortest first leaves one long job at the end
    assert makespan([5, 1], 1) == 6
