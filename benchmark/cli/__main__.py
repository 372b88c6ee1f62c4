"""``python -m benchmark.cli``: the ``genrebench`` command."""

from benchmark.cli import main

main()
