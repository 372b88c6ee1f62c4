# genrebench in a container: the image of docker-compose.yml's workers and MLflow server.
#   docker build -t genrebench .
#   docker run --rm -v /path/to/gtzan:/data:ro -e GENREBENCH_STORAGE=... genrebench worker ...
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY benchmark ./benchmark
COPY configs ./configs
COPY search_spaces ./search_spaces
COPY datasets ./datasets
RUN pip install --no-cache-dir -e .
ENV MLFLOW_DISABLE_TELEMETRY=true DO_NOT_TRACK=true
ENTRYPOINT ["genrebench"]
CMD ["--help"]
