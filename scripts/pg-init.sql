-- docker-compose.yml: the MLflow tracking server's database, beside genrebench's (POSTGRES_DB)
CREATE DATABASE mlflow;
