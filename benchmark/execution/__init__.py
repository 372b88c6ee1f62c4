"""The execution wing: everything that plans and runs folds, on one machine or many.

The stages (data, features, protocols, models, tuning, results, ensembles, report, the final
model) say *what* is computed; this wing says *which* fold jobs run, where, in what order and
for how long:

* :mod:`~benchmark.execution.plan`: the jobs of a benchmark (the one module stages may import);
* :mod:`~benchmark.execution.local`: ``genrebench run`` on one machine (lock, dry run);
* :mod:`~benchmark.execution.schedule`: dispatch order, re-plans, the deadline;
* :mod:`~benchmark.execution.cluster`: where jobs run (a Dask LocalCluster or a cluster);
* :mod:`~benchmark.execution.time_budget` and :mod:`~benchmark.execution.cost`: a wall-clock
  budget turned into trial caps, from measured costs;
* :mod:`~benchmark.execution.racing`: pairs shown worse get no more folds;
* :mod:`~benchmark.execution.outputs`: the results files a run writes;
* :mod:`~benchmark.execution.fold_outcomes`: finished folds' outcomes, kept with the results;
* :mod:`~benchmark.execution.status`: ``genrebench status``.

The command line imports what it runs from here.
"""

from benchmark.execution.cluster import WORKER_CONFIG
from benchmark.execution.local import RunResult, benchmark_lock, dry_run, plan_and_run
from benchmark.execution.outputs import write_outcome_files, write_trials_file
from benchmark.execution.plan import Plan, RunOptions, make_plan, provenance
from benchmark.execution.status import Progress, progress

__all__ = [
    "WORKER_CONFIG",
    "Plan",
    "Progress",
    "RunOptions",
    "RunResult",
    "benchmark_lock",
    "dry_run",
    "make_plan",
    "plan_and_run",
    "progress",
    "provenance",
    "write_outcome_files",
    "write_trials_file",
]
