"""A .env shared with docker compose and boto3: their variables are not settings of ours."""

from __future__ import annotations

from pathlib import Path

import pytest

from spreports.errors import SettingsError
from spreports.settings import export_aws_variables, load_settings
from spreports.workers.flower_security import flower_arguments

ROOT = Path(__file__).resolve().parents[2]


def test_aws_and_compose_variables_in_dotenv_are_not_unknown_settings(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(
        "SPREPORTS_SELLER_ID=A1\nAWS_ACCESS_KEY_ID=AKIAEXAMPLE\nAWS_SECRET_ACCESS_KEY=secret\n"
        "AWS_DEFAULT_REGION=eu-west-1\nREDIS_PASSWORD=pw\nFLOWER_BASIC_AUTH=a:b\n"
    )
    assert load_settings.__module__  # the real loader, as the processes call it
    environ: dict[str, str] = {"AWS_DEFAULT_REGION": "us-east-1"}
    exported = export_aws_variables(env_file, environ)
    # boto3 gets the keys; what the process environment already says wins.
    assert environ == {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "secret",
    }
    assert sorted(exported) == ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]


def test_settings_read_only_the_prefixed_variables_of_dotenv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("SPREPORTS_SELLER_ID=A1\nREDIS_PASSWORD=pw\nFLOWER_BASIC_AUTH=a:b\nAWS_ACCESS_KEY_ID=x\n")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "from-the-environment")
    assert load_settings(env_file=env_file).seller_id == "A1"
    env_file.write_text("SPREPORTS_NO_SUCH_THING=1\n")
    with pytest.raises(SettingsError, match="SPREPORTS_NO_SUCH_THING: unknown setting"):
        load_settings(env_file=env_file)


@pytest.mark.parametrize("example", [".env.example", ".env.demo"])
def test_the_shipped_env_files_load(example: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL_SQS"):
        monkeypatch.setenv(name, "set")  # nothing exported into the test process
    settings = load_settings(env_file=ROOT / example)
    assert settings.seller_id


def test_flower_listens_on_loopback_unless_told_and_never_open_beyond_it() -> None:
    assert flower_arguments(["--port=5555"], {}) == ["--port=5555", "--address=127.0.0.1"]
    with pytest.raises(SettingsError, match="no login"):
        flower_arguments(["--address=0.0.0.0"], {})
    with pytest.raises(SettingsError, match="no login"):
        flower_arguments([], {"FLOWER_ADDRESS": ""})
    assert flower_arguments(["--address=0.0.0.0"], {"FLOWER_BASIC_AUTH": "a:b"}) == ["--address=0.0.0.0"]
    assert flower_arguments(["--address", "0.0.0.0", "--basic-auth=a:b"], {}) == [
        "--address",
        "0.0.0.0",
        "--basic-auth=a:b",
    ]
