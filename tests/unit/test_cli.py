"""The command line's pieces that run in-process (the commands as processes: tests/integration/test_cli.py)."""

from __future__ import annotations

import os
from pathlib import Path


def test_demo_builds_its_settings_without_touching_the_environment(tmp_path: Path) -> None:
    from spreports.settings import Settings
    from spreports.workers.cli.demo import settings_with

    base = Settings(_env_file=None, data_dir=tmp_path, sqs={"receivers": 3})
    before = dict(os.environ)
    env = {
        "AWS_ENDPOINT_URL_SQS": "http://127.0.0.1:1",
        "SPREPORTS_BROKER_URL": "redis://127.0.0.1:6390/0",
        "SPREPORTS_LWA__CLIENT_SECRET": "amzn1.oa2-cs.v1.demo-secret",
        "SPREPORTS_SQS__WAIT_TIME_SECONDS": "1",
        "SPREPORTS_DOCUMENTS__ALLOWED_HOSTS": '["http://127.0.0.1:9"]',
    }
    settings = settings_with(base, env)
    assert dict(os.environ) == before
    assert settings.broker_url == "redis://127.0.0.1:6390/0"
    assert settings.lwa.client_secret is not None
    assert settings.lwa.client_secret.get_secret_value() == "amzn1.oa2-cs.v1.demo-secret"
    assert settings.sqs.wait_time_seconds == 1
    assert settings.sqs.receivers == 3  # the rest of base is kept
    assert settings.documents.allowed_hosts == ["http://127.0.0.1:9"]
    assert settings.data_dir == tmp_path
