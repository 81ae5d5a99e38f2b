# One image for every process of the product; docker-compose.yml picks the command.
FROM python:3.12-slim
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md beat_schedule.py ./
COPY spreports ./spreports
COPY workers ./workers
COPY tasks ./tasks
RUN pip install . && useradd --create-home spreports && mkdir -p /data/reports && chown -R spreports /data
USER spreports
ENTRYPOINT ["spreports"]
