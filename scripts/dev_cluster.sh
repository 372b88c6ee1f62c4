#!/usr/bin/env bash
# A throwaway PostgreSQL (and an MLflow tracking server on it) on 127.0.0.1 for development:
#
#   eval "$(scripts/dev_cluster.sh start --mlflow-port 5001)"   # prints the two exports
#   genrebench worker --config quick & genrebench worker --config quick &
#   scripts/dev_cluster.sh stop
#
# Debian's postgresql package is enough (apt-get install -y postgresql); as root the server runs
# as the postgres user. Options: --dir DIR (default /tmp/genrebench-dev), --port N.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
exec "$PY" tests/devcluster.py "$@"
