# genrebench in a container: the image of docker-compose.yml's services. genrebench is installed
# from its wheel (the configs, search spaces and dataset manifests ship inside it), with the audio
# extra and musicnn's weights, so that the image computes every feature set but the neural ones.
#   docker build -t genrebench .
#   docker run --rm -v /path/to/gtzan:/data:ro -v "$PWD/results:/results" genrebench \
#       run --config smoke --data-dir /data --results-dir /results

# 1. the wheel, built as `pip wheel .` builds it from a checkout (tests/packaging/test_wheel.py
#    builds it from these files alone and checks it against the checkout's)
FROM python:3.11-slim AS wheel
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY benchmark ./benchmark
COPY configs ./configs
COPY search_spaces ./search_spaces
COPY datasets ./datasets
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /dist .

# 2. the image: the wheel and its dependencies, no source tree. musicnn's checkpoints come with
#    --no-deps, as in .ci/run: its metadata pins TensorFlow 1 and numpy<1.17, which genrebench
#    neither needs (it reads the checkpoint with numpy) nor could install beside numpy 2.
FROM python:3.11-slim
COPY --from=wheel /dist /dist
RUN pip install --no-cache-dir "$(echo /dist/genrebench-*.whl)[audio]" \
    && pip install --no-cache-dir --no-deps musicnn==0.1.0 \
    && rm -rf /dist
ENV MLFLOW_DISABLE_TELEMETRY=true DO_NOT_TRACK=true
# an empty working folder: `run` writes ./results here unless --results-dir says otherwise
WORKDIR /work
ENTRYPOINT ["genrebench"]
CMD ["--help"]
