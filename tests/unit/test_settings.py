"""Settings: environment names, validation errors that name the variable, secrets never shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from spreports.settings import SettingsError, load_settings, mask_url, masked


def test_nested_environment_variables_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPREPORTS_SQS__QUEUE_URL", "http://localhost:4566/000000000000/q")
    monkeypatch.setenv("SPREPORTS_SQS__WAIT_TIME_SECONDS", "5")
    monkeypatch.setenv("SPREPORTS_SPAPI__REGION", "eu")
    monkeypatch.setenv("SPREPORTS_DOCUMENTS__ALLOWED_HOSTS", '["*.example.com"]')
    settings = load_settings(env_file=None)
    assert settings.sqs.queue_url == "http://localhost:4566/000000000000/q"
    assert settings.sqs.wait_time_seconds == 5
    assert settings.spapi.region == "eu"
    assert settings.documents.allowed_hosts == ["*.example.com"]


def test_defaults() -> None:
    settings = load_settings(env_file=None)
    assert settings.broker_url is None
    assert settings.lwa.token_url == "https://api.amazon.com/auth/o2/token"
    assert settings.sqs.wait_time_seconds == 20
    assert settings.storage.url == "reports"
    assert settings.documents.transcode is True
    assert "*.amazonaws.com" in settings.documents.allowed_hosts


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("SPREPORTS_SQS__WAIT_TIME_SECONDS", "30", "SPREPORTS_SQS__WAIT_TIME_SECONDS: Input should be less"),
        ("SPREPORTS_SPAPI__REGION", "mars", "SPREPORTS_SPAPI__REGION: Input should be 'na', 'eu' or 'fe'"),
        ("SPREPORTS_BROKER_URL", "redis://localhost:12ab/0", "SPREPORTS_BROKER_URL: has a malformed port"),
        ("SPREPORTS_BROKER_URL", "http://localhost", "SPREPORTS_BROKER_URL: must be a Redis URL"),
        ("SPREPORTS_BROKER_URL", "amqp://localhost", "SPREPORTS_REDIS_URL: required with an AMQP broker"),
        ("SPREPORTS_BROKER_URL", "amqp://localhost:56x2//", "SPREPORTS_BROKER_URL: has a malformed port"),
        ("SPREPORTS_REDIS_URL", "amqp://localhost", "SPREPORTS_REDIS_URL: must be a Redis URL"),
        ("SPREPORTS_STORAGE__URL", "ftp://host/x", "SPREPORTS_STORAGE__URL: scheme 'ftp' is not supported"),
        ("SPREPORTS_STORAGE__URL", "s3://", "SPREPORTS_STORAGE__URL: an s3:// URL needs a bucket name"),
        ("SPREPORTS_NO_SUCH_THING", "1", "SPREPORTS_NO_SUCH_THING: unknown setting"),
        ("SPREPORTS_SQS__NO_SUCH_THING", "1", "SPREPORTS_SQS__NO_SUCH_THING: unknown setting"),
    ],
)
def test_bad_values_fail_with_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as caught:
        load_settings(env_file=None)
    message = str(caught.value)
    assert message.startswith(expected)
    assert "\n" not in message


def test_a_bad_secret_is_never_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPREPORTS_BROKER_URL", "redis://:hunter2-password@host:99999x/0")
    with pytest.raises(SettingsError) as caught:
        load_settings(env_file=None)
    assert "hunter2" not in str(caught.value)


def test_masked_hides_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPREPORTS_LWA__CLIENT_SECRET", "amzn1.oa2-cs.v1.secret-value")
    monkeypatch.setenv("SPREPORTS_LWA__REFRESH_TOKEN", "Atzr|refresh-token-value")
    settings = load_settings(env_file=None)
    assert settings.lwa.client_secret is not None
    assert settings.lwa.client_secret.get_secret_value() == "amzn1.oa2-cs.v1.secret-value"
    text = repr(masked(settings)) + repr(settings)
    assert "secret-value" not in text
    assert "refresh-token-value" not in text


def test_dotenv_file_is_read(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("SPREPORTS_SELLER_ID=A3TH9S8BH6GOGM\nSPREPORTS_SPAPI__SANDBOX=true\n")
    settings = load_settings(env_file=env_file)
    assert settings.seller_id == "A3TH9S8BH6GOGM"
    assert settings.spapi.sandbox is True


def test_sellers_file_adds_sellers(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    sellers = tmp_path / "sellers.toml"
    sellers.write_text(
        '[sellers.A1EU]\nrefresh_token = "Atzr|eu"\nregion = "eu"\nmarketplace_ids = ["A1PA6795UKMFR9"]\n'
        '[sellers.A2NA]\nrefresh_token = "Atzr|na"\n'
    )
    monkeypatch.setenv("SPREPORTS_SELLERS_FILE", str(sellers))
    monkeypatch.setenv("SPREPORTS_SELLER_ID", "A0DEFAULT")
    monkeypatch.setenv("SPREPORTS_LWA__REFRESH_TOKEN", "Atzr|default")
    settings = load_settings(env_file=None)
    assert set(settings.sellers()) == {"A0DEFAULT", "A1EU", "A2NA"}
    assert settings.region_of("A1EU") == "eu"
    assert settings.region_of("A2NA") == "na"
    assert settings.sellers()["A1EU"].marketplace_ids == ["A1PA6795UKMFR9"]


def test_bad_sellers_file_names_the_seller(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    sellers = tmp_path / "sellers.toml"
    sellers.write_text('[sellers.A1EU]\nregion = "eu"\n')
    monkeypatch.setenv("SPREPORTS_SELLERS_FILE", str(sellers))
    with pytest.raises(SettingsError, match=r"^SPREPORTS_SELLERS_FILE: seller A1EU: refresh_token: Field required"):
        load_settings(env_file=None).sellers()


def test_masked_hides_url_passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPREPORTS_BROKER_URL", "redis://:broker-pw@redis.internal:6379/0")
    monkeypatch.setenv("SPREPORTS_RESULT_BACKEND", "rediss://default:backend-p@ss@redis.internal:6380/1")
    monkeypatch.setenv("SPREPORTS_SQS__QUEUE_URL", "https://sqs-user:sqs-pw@sqs.example.com/000000000000/q")
    settings = load_settings(env_file=None)
    data = masked(settings)
    assert data["broker_url"] == "redis://:**********@redis.internal:6379/0"
    assert data["result_backend"] == "rediss://default:**********@redis.internal:6380/1"
    assert data["sqs"]["queue_url"] == "https://sqs-user:**********@sqs.example.com/000000000000/q"
    for secret in ("broker-pw", "backend-p", "ss@redis", "sqs-pw"):
        assert secret not in repr(data)
    # The settings themselves keep the real value: only the shown copy is masked.
    assert settings.broker_url == "redis://:broker-pw@redis.internal:6379/0"
    # repr()/str() of the settings (logged, or dumped by a library) mask URL passwords too.
    for shown in (repr(settings), str(settings)):
        assert "redis://:**********@redis.internal:6379/0" in shown
        assert "broker-pw" not in shown and "backend-p" not in shown


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://localhost:6379/0", "redis://localhost:6379/0"),
        ("redis://only-a-token@host/0", "redis://**********@host/0"),
        ("https://host/path?user=a@b", "https://host/path?user=a@b"),
        ("reports/with@sign", "reports/with@sign"),
        ("s3://bucket/prefix", "s3://bucket/prefix"),
    ],
)
def test_mask_url(url: str, shown: str) -> None:
    assert mask_url(url) == shown


def test_malformed_json_in_dotenv_names_variable_and_file(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("SPREPORTS_SQS__REPORT_TYPES=[hidden-value\n")
    with pytest.raises(SettingsError) as caught:
        load_settings(env_file=env_file)
    message = str(caught.value)
    assert message.startswith(f"SPREPORTS_SQS__REPORT_TYPES (in {env_file}): is not valid JSON")
    assert "hidden-value" not in message


def test_malformed_json_without_a_culprit_names_the_section(monkeypatch: pytest.MonkeyPatch) -> None:
    # Both list settings of the section are broken: the message names the section, not a guess.
    monkeypatch.setenv("SPREPORTS_DOCUMENTS__ALLOWED_HOSTS", "[a")
    monkeypatch.setenv("SPREPORTS_DOCUMENTS", "{b")
    with pytest.raises(SettingsError, match=r"^SPREPORTS_DOCUMENTS: a value of this setting could not be parsed"):
        load_settings(env_file=None)


# A real Fernet key (Fernet.generate_key()): 44 characters, 32 bytes.
FERNET_KEY = "x8QvhXxmyHe0xzcibttQbLQmPSjg5cxYxQBSvAV-3eI="
OTHER_KEY = "tsaow4KrtAK7PBWxFQNy6xjO4w_FspQIhaqm2Kfa8_8="
LABEL_63 = "a" * 63

# Values refused at settings load: (variable, value, start of the one line). Each line names the
# variable and never shows the value (a key, a URL with a password).
REFUSED = [
    ("SPREPORTS_TOKEN_KEYS", '["not-a-fernet-key"]', "SPREPORTS_TOKEN_KEYS: the key is not a Fernet key"),
    ("SPREPORTS_TOKEN_KEYS", '[""]', "SPREPORTS_TOKEN_KEYS: the key is not a Fernet key"),
    ("SPREPORTS_TOKEN_KEYS", f'["{FERNET_KEY[:-1]}"]', "SPREPORTS_TOKEN_KEYS: the key is not a Fernet key"),
    ("SPREPORTS_TOKEN_KEYS", f'["{FERNET_KEY[:-4]}"]', "SPREPORTS_TOKEN_KEYS: the key is not a Fernet key"),
    ("SPREPORTS_TOKEN_KEYS", f'["{FERNET_KEY[:-1]}AAAA="]', "SPREPORTS_TOKEN_KEYS: the key is not a Fernet key"),
    ("SPREPORTS_TOKEN_KEYS", f'["{FERNET_KEY[:-2]}é="]', "SPREPORTS_TOKEN_KEYS: the key is not a Fernet key"),
    ("SPREPORTS_TOKEN_KEYS", f'["{FERNET_KEY}", "secret-second"]', "SPREPORTS_TOKEN_KEYS: key 2 of 2 is not"),
    ("SPREPORTS_SQS__QUEUE_URL", "sqs.us-east-1.amazonaws.com/1/q", "SPREPORTS_SQS__QUEUE_URL: must be an http(s)"),
    ("SPREPORTS_SQS__QUEUE_URL", "https://:443/1/q", "SPREPORTS_SQS__QUEUE_URL: needs a host"),
    ("SPREPORTS_SQS__QUEUE_URL", "https://h:0/1/q", "SPREPORTS_SQS__QUEUE_URL: has a malformed port"),
    ("SPREPORTS_SQS__QUEUE_URL", "https://h:65536/1/q", "SPREPORTS_SQS__QUEUE_URL: has a malformed port"),
    ("SPREPORTS_SQS__QUEUE_URL", "https://h:-1/1/q", "SPREPORTS_SQS__QUEUE_URL: has a malformed port"),
    ("SPREPORTS_SQS__DEAD_LETTER_QUEUE_URL", "https://h\t.com/q", "SPREPORTS_SQS__DEAD_LETTER_QUEUE_URL: holds a space"),
    ("SPREPORTS_SPAPI__ENDPOINT", f"https://{LABEL_63}a.example.com", "SPREPORTS_SPAPI__ENDPOINT: has a malformed host"),
    ("SPREPORTS_SPAPI__ENDPOINT", "https://a..example.com", "SPREPORTS_SPAPI__ENDPOINT: has a malformed host"),
    ("SPREPORTS_LWA__TOKEN_URL", "https://secret@", "SPREPORTS_LWA__TOKEN_URL: needs a host"),
    ("SPREPORTS_RABBITMQ_MANAGEMENT_URL", "http://u:secret@h:99999", "SPREPORTS_RABBITMQ_MANAGEMENT_URL: has a malformed port"),
    ("SPREPORTS_BROKER_URL", "redis://:secret@h:0/0", "SPREPORTS_BROKER_URL: has a malformed port"),
    ("SPREPORTS_BROKER_URL", "amqp://u:secret@h:65536//", "SPREPORTS_BROKER_URL: has a malformed port"),
    ("SPREPORTS_REDIS_URL", "redis://:secret@h:6379/secret", "SPREPORTS_REDIS_URL: has a database that is not a number"),
    ("SPREPORTS_REDIS_URL", "redis+socket://", "SPREPORTS_REDIS_URL: needs the socket's path"),
    ("SPREPORTS_SQS__METRICS_PORT", "0", "SPREPORTS_SQS__METRICS_PORT: Input should be greater than or equal to 1"),
    ("SPREPORTS_SQS__METRICS_PORT", "65536", "SPREPORTS_SQS__METRICS_PORT: Input should be less than or equal to 65535"),
    ("SPREPORTS_METRICS_BASIC_AUTH", "secret", "SPREPORTS_METRICS_BASIC_AUTH: must be user:password"),
    ("SPREPORTS_METRICS_BASIC_AUTH", ":secret", "SPREPORTS_METRICS_BASIC_AUTH: must be user:password"),
    ("SPREPORTS_METRICS_BASIC_AUTH", "prometheus:", "SPREPORTS_METRICS_BASIC_AUTH: has an empty password"),
    ("SPREPORTS_METRICS_BASIC_AUTH", "admin:change-me", "SPREPORTS_METRICS_BASIC_AUTH: has a placeholder password"),
]  # fmt: skip

# The boundaries just inside: taken as they are.
ACCEPTED = [
    ("SPREPORTS_TOKEN_KEYS", f'["{FERNET_KEY}"]'),
    ("SPREPORTS_TOKEN_KEYS", f'["{FERNET_KEY}", "{OTHER_KEY}"]'),
    ("SPREPORTS_TOKEN_KEYS", "[]"),
    ("SPREPORTS_SQS__QUEUE_URL", "https://h:65535/1/q"),
    ("SPREPORTS_SQS__QUEUE_URL", "https://h:1/1/q"),
    ("SPREPORTS_SQS__QUEUE_URL", "http://[::1]:4566/000000000000/q"),
    ("SPREPORTS_SPAPI__ENDPOINT", f"https://{LABEL_63}.example.com"),
    ("SPREPORTS_BROKER_URL", "redis://:pw@my_redis:6379/15"),
    ("SPREPORTS_BROKER_URL", "redis+socket:///run/redis.sock"),
    ("SPREPORTS_SQS__METRICS_PORT", "1"),
    ("SPREPORTS_SQS__METRICS_PORT", "65535"),
    ("SPREPORTS_METRICS_BASIC_AUTH", "prometheus:0b7d5c1e9f2a4c6b"),
]


@pytest.mark.parametrize(("name", "value", "expected"), REFUSED)
def test_bad_keys_urls_and_ports_are_refused_at_load_naming_the_setting_never_its_value(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as caught:
        load_settings(env_file=None)
    message = str(caught.value)
    assert message.startswith(expected), message
    assert "\n" not in message
    for secret in ("secret", "not-a-fernet-key", FERNET_KEY[:20], "change-me", LABEL_63):
        assert secret not in message


@pytest.mark.parametrize(("name", "value"), ACCEPTED)
def test_the_boundaries_of_keys_urls_and_ports_are_accepted(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    load_settings(env_file=None)
