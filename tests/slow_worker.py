"""``genrebench`` with every model fit slowed down by ``$SLOW_FIT_S`` seconds, so that a test can
kill a worker while one of its trials runs:

    python tests/slow_worker.py worker --config ... --storage ...
"""

from __future__ import annotations

import os
import time

import benchmark.tuning as tuning
from benchmark.cli import main

_DELAY = float(os.environ.get("SLOW_FIT_S", "0.3"))
_fit_predict = tuning._fit_predict


def _slow_fit_predict(*args, **kwargs):
    time.sleep(_DELAY)
    return _fit_predict(*args, **kwargs)


tuning._fit_predict = _slow_fit_predict

if __name__ == "__main__":
    main()
