"""``python -m benchmark.cli``: the ``genrebench`` command.

Guarded: a process that multiprocessing spawns from one started this way (a Dask nanny's
worker under ``genrebench worker``) imports this module again as ``__mp_main__``, and must not
run the command a second time.
"""

from benchmark.cli import main

if __name__ == "__main__":
    main()
