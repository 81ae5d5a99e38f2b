# One image for every process of the product; docker-compose.yml picks the command.
# The data extra (pyarrow, DuckDB: stored documents as typed rows, `spreports data`) is always in;
# EXTRAS="data,local" adds the simulator and moto: the compose file's demo profile builds it so.
FROM python:3.12-slim
ARG EXTRAS="data"
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY constraints.txt pyproject.toml README.md beat_schedule.py ./
COPY spreports ./spreports
COPY workers ./workers
COPY tasks ./tasks
# Every dependency at the version constraints.txt pins (scripts/pin writes it from pyproject.toml's
# ranges): one commit, one set of versions, whenever the image is built.
RUN pip install --constraint constraints.txt ".[${EXTRAS}]"
# The non-root user owns every path a volume is mounted on (docker-compose.yml checks against this
# list in tests/e2e/test_core_install.py): Docker fills an empty named volume from the image's
# directory, owner included; a path the image lacks would be created root-owned and refuse the worker.
RUN useradd --create-home --uid 10001 spreports \
 && mkdir -p /data/reports /data/beat \
 && chown -R spreports:spreports /data
USER spreports
# The user's home: what a process writes relative to its working directory (SPREPORTS_DATA_DIR) is its own.
WORKDIR /home/spreports
ENTRYPOINT ["spreports"]
