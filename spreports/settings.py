"""The one settings object of spreports: every knob of every process, read once per process.

Values come from environment variables (prefix ``SPREPORTS_``, nested parts joined with ``__``) or an
optional ``.env`` file in the working directory. AWS settings are boto3's own (``AWS_DEFAULT_REGION``,
``AWS_ENDPOINT_URL_SQS``, ``AWS_ENDPOINT_URL_S3`` and the usual credential chain) and are left to boto3:
in ``.env`` they are no setting of ours, and :func:`load_settings` hands them to boto3 (the process
environment wins). Other variables without the prefix in ``.env`` (compose's ``REDIS_PASSWORD``) are ignored.

Nothing else in the product reads ``os.environ``: processes call :func:`load_settings` once and pass
the object down. A bad value raises :class:`SettingsError` whose message is one line naming the
variable and the problem, never the value (it may be a secret).
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import os
import re
import tomllib
import typing
from collections.abc import Iterable, Mapping
from functools import cached_property
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, DotEnvSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict
from pydantic_settings import SettingsError as SourceError

from spreports.errors import SettingsError
from spreports.ids import AmazonId, is_amazon_id

ENV_PREFIX = "SPREPORTS_"
NESTED_DELIMITER = "__"
DEFAULT_TOKEN_URL = "https://api.amazon.com/auth/o2/token"
# Pre-signed report URLs point at S3 or CloudFront; nothing else may be fetched unless configured.
DEFAULT_ALLOWED_HOSTS = ["*.amazonaws.com", "*.cloudfront.net"]
REGIONS = ("na", "eu", "fe")
DEFAULT_MAX_DECOMPRESSED_BYTES = 16 * 2**30
Region = Literal["na", "eu", "fe"]
REDIS_SCHEMES = ("redis", "rediss", "redis+socket", "unix")
AMQP_SCHEMES = ("amqp", "amqps")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LwaSettings(_Section):
    """Login with Amazon: the application's client credentials and the default seller's refresh token."""

    client_id: str | None = None
    client_secret: SecretStr | None = None
    refresh_token: SecretStr | None = None
    token_url: str = DEFAULT_TOKEN_URL

    @field_validator("token_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return _require_http_url(value)


class SpapiSettings(_Section):
    """Where the Selling Partner API is reached."""

    region: Region = "na"
    sandbox: bool = False
    endpoint: str | None = None
    connect_timeout: float = Field(default=5.0, gt=0)
    read_timeout: float = Field(default=60.0, gt=0)

    @field_validator("endpoint")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        return None if value is None else _require_http_url(value).rstrip("/")


class SqsSettings(_Section):
    """The SQS queue Amazon delivers REPORT_PROCESSING_FINISHED notifications to."""

    queue_url: str | None = None
    wait_time_seconds: int = Field(default=20, ge=0, le=20)
    dead_letter_queue_url: str | None = None
    application_id: str | None = None
    # Report types worth downloading; empty means all. Filters before any SP-API quota is spent.
    report_types: list[str] = Field(default_factory=list)
    receivers: int = Field(default=1, ge=1, le=32)
    visibility_timeout: int = Field(default=60, ge=5, le=43200)
    # Port 0 would be any free port, one Prometheus could not know.
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    #: Where the relay's metrics listen: loopback unless told; beyond it, SPREPORTS_METRICS_BASIC_AUTH is required.
    metrics_host: str = Field(default="127.0.0.1", min_length=1, max_length=255)

    @field_validator("queue_url", "dead_letter_queue_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        return None if value is None else _require_http_url(value)


class StorageSettings(_Section):
    """Where documents are stored: a directory (``file:///path`` or a plain path) or ``s3://bucket/prefix``."""

    url: str = "reports"

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        scheme = urlsplit(value).scheme
        if scheme not in ("", "file", "s3") and len(scheme) > 1:  # len 1: a Windows drive letter
            raise ValueError(f"scheme {scheme!r} is not supported; use a path, file:///path or s3://bucket/prefix")
        if scheme == "s3" and not urlsplit(value).netloc:
            raise ValueError("an s3:// URL needs a bucket name")
        return value


class DocumentsSettings(_Section):
    """How report documents are retrieved and written."""

    allowed_hosts: list[str] = Field(default_factory=lambda: list(DEFAULT_ALLOWED_HOSTS))
    transcode: bool = True
    strict_decoding: bool = False
    # The largest report documents sellers meet are a few GiB once decompressed; a bomb goes past this.
    max_decompressed_bytes: int = Field(default=DEFAULT_MAX_DECOMPRESSED_BYTES, gt=0)
    # The claim's renewal window: a live worker renews its claim on a document every third of this
    # (so it holds for as long as the download runs); a dead worker's claim lapses within it.
    claim_ttl_seconds: int = Field(default=30, ge=10, le=600)
    # A running download publishes its progress (task state, event, byte counters) every this many
    # seconds or bytes received, whichever comes first: a few Redis writes, never one per block.
    progress_seconds: float = Field(default=2.0, gt=0)
    progress_bytes: int = Field(default=64 * 2**20, gt=0)


class RequestsSettings(_Section):
    """How on-demand report requests spare quota and follow a report to its document."""

    # A DONE report identical to a new request (type, marketplaces, options, data window) and at most
    # this old is reused instead of paying createReport again; 0 reuses only reports still in flight.
    reuse_done_seconds: int = Field(default=3600, ge=0)
    # Also ask Amazon (getReports, one call) for an identical report before createReport.
    check_amazon: bool = True
    # getReport polls of a requested report: the first after this many seconds, then doubling up to
    # follow_max_seconds; a report still unfinished after follow_timeout_seconds of polling is given up.
    follow_first_seconds: float = Field(default=15.0, gt=0)
    follow_max_seconds: float = Field(default=300.0, gt=0, le=540)
    follow_timeout_seconds: int = Field(default=12 * 3600, gt=0)
    # A backfill's driving run this many seconds late for its next round is taken for dead: the next
    # run of the same backfill takes it over (until then, a second run only follows the first).
    backfill_takeover_seconds: float = Field(default=120.0, gt=0)
    # ``spreports reports backfill`` of more windows than this asks for --yes (a mistyped year is not 1,500 requests).
    backfill_max_windows: int = Field(default=100, ge=1, le=100_000)


class SellerSettings(_Section):
    """One selling partner the product works for (from ``SPREPORTS_SELLERS_FILE``)."""

    refresh_token: SecretStr
    region: Region | None = None
    marketplace_ids: list[str] = Field(default_factory=list)


class Settings(BaseSettings):
    """Every setting of the product. Build it with :func:`load_settings`."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=NESTED_DELIMITER,
        env_file=".env",
        extra="forbid",
        frozen=True,
    )

    #: The Celery broker: a Redis URL, or an AMQP one (RabbitMQ). Unset: the state Redis.
    broker_url: str | None = None
    #: The Redis of the product's own state (claims, limits, tokens, dedupe, ledger, metrics). Unset: the
    #: broker when it is a Redis (required with an AMQP broker), else the embedded Redis.
    redis_url: str | None = None
    result_backend: str | None = None
    #: RabbitMQ's management API (``http://user:password@host:15672``), where ``check`` and the metrics see
    #: the messages RabbitMQ holds in its delay queues. Unset: the AMQP broker's host, port 15672, its user.
    rabbitmq_management_url: str | None = None
    data_dir: Path = Path(".spreports")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    #: ``text`` (one line a record, ``key=value`` context at the end) or ``json`` (one object a line).
    log_format: Literal["text", "json"] = "text"
    #: A stopping worker (SIGTERM) lets running tasks finish this long, then hands the rest back to the
    #: queue (README, "Stopping a worker"); an orchestrator's grace period must be longer.
    worker_soft_shutdown_seconds: float = Field(default=10.0, ge=0, le=3600)
    seller_id: AmazonId | None = None
    sellers_file: Path | None = None
    #: Keys sealing the cached tokens in Redis (Fernet keys; the first seals, all open); none: derived
    #: from the LWA client secret.
    token_keys: list[SecretStr] = Field(default_factory=list)
    #: ``user:password`` that ``spreports metrics`` asks of its clients (HTTP basic auth); required when
    #: it listens beyond loopback.
    metrics_basic_auth: SecretStr | None = None
    schedules_file: Path | None = None
    #: Seconds between schedule syncs (beat also syncs when it starts and when the schedules file changes).
    schedules_sync_interval: int = Field(default=3600, ge=60)
    lwa: LwaSettings = Field(default_factory=LwaSettings)
    spapi: SpapiSettings = Field(default_factory=SpapiSettings)
    sqs: SqsSettings = Field(default_factory=SqsSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    documents: DocumentsSettings = Field(default_factory=DocumentsSettings)
    requests: RequestsSettings = Field(default_factory=RequestsSettings)

    @field_validator("redis_url", "result_backend")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        return None if value is None else _require_redis_url(value)

    @field_validator("broker_url")
    @classmethod
    def _broker_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in AMQP_SCHEMES:
            return _require_redis_url(value, also="or an AMQP URL such as amqp://host:5672//")
        return _require_host_and_port(value, example="amqp://user:password@rabbitmq:5672//")

    @field_validator("rabbitmq_management_url")
    @classmethod
    def _management_url(cls, value: str | None) -> str | None:
        if value is not None and (urlsplit(value).scheme not in ("http", "https") or not urlsplit(value).hostname):
            raise ValueError("needs http:// or https:// and a host, e.g. http://user:password@rabbitmq:15672")
        return None if value is None else _require_http_url(value)

    @field_validator("token_keys")
    @classmethod
    def _fernet_keys(cls, keys: list[SecretStr]) -> list[SecretStr]:
        # Checked here, not when the first token is sealed: a bad key must stop every process at start,
        # not fail each document. The message never shows a key (it is a secret).
        for index, key in enumerate(keys, start=1):
            if not _is_fernet_key(key.get_secret_value()):
                which = f"key {index} of {len(keys)}" if len(keys) > 1 else "the key"
                raise ValueError(
                    f"{which} is not a Fernet key (32 url-safe base64-encoded bytes, 44 characters); make one with "
                    'python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"'
                )
        return keys

    @field_validator("metrics_basic_auth")
    @classmethod
    def _basic_auth(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            basic_auth(value)  # raises ValueError naming what is wrong, never the password
        return value

    @model_validator(mode="after")
    def _state_redis_with_amqp(self) -> Settings:
        # RabbitMQ carries the tasks only: claims, limits, tokens and results need a Redis of their own.
        if self.broker_is_amqp and self.redis_url is None:
            raise ValueError(
                f"{ENV_PREFIX}REDIS_URL: required with an AMQP broker (the Redis of claims, limits, tokens and results)"
            )
        return self

    @property
    def broker_is_amqp(self) -> bool:
        """Whether the Celery broker is RabbitMQ (an ``amqp://`` or ``amqps://`` URL) rather than Redis."""
        return self.broker_url is not None and urlsplit(self.broker_url).scheme in AMQP_SCHEMES

    @property
    def state_redis_url(self) -> str | None:
        """The configured Redis of the product's state; None: the embedded Redis."""
        if self.redis_url is not None:
            return self.redis_url
        return None if self.broker_is_amqp else self.broker_url

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """The usual sources, with ``.env`` read for ``SPREPORTS_*`` variables only."""
        if isinstance(dotenv_settings, DotEnvSettingsSource):
            # The file chosen at run time (``Settings(_env_file=...)``), not only the configured one.
            dotenv_settings = DotEnvPrefixedSettingsSource(
                settings_cls, env_file=dotenv_settings.env_file, env_file_encoding=dotenv_settings.env_file_encoding
            )
        return init_settings, env_settings, dotenv_settings, file_secret_settings

    def __repr_args__(self) -> Iterable[tuple[str | None, Any]]:
        # repr() and str() show URLs with their password masked, as masked() does: a logged or dumped
        # Settings must not carry the broker password.
        for name, value in super().__repr_args__():
            yield name, mask_url(value) if isinstance(value, str) else value

    def sellers(self) -> dict[str, SellerSettings]:
        """All configured sellers: the default one (SELLER_ID + LWA refresh token) and the sellers file."""
        return dict(self._sellers)

    @cached_property
    def _sellers(self) -> dict[str, SellerSettings]:
        # Read once per settings object: clients and tasks ask for sellers on every call.
        sellers: dict[str, SellerSettings] = {}
        if self.seller_id and self.lwa.refresh_token is not None:
            sellers[self.seller_id] = SellerSettings(refresh_token=self.lwa.refresh_token)
        if self.sellers_file is not None:
            sellers.update(read_sellers_file(self.sellers_file))
        return sellers

    def region_of(self, seller_id: str) -> Region:
        """The SP-API region a seller is served from (its own, else the global default)."""
        seller = self.sellers().get(seller_id)
        return seller.region if seller and seller.region else self.spapi.region


#: The largest settings file read (a sellers or schedules file, ``.env``): thousands of entries fit in it.
MAX_FILE_BYTES = 2**20
#: The deepest nesting of tables and arrays a settings file may have (the schedules file needs 3).
MAX_FILE_DEPTH = 16


def read_text_file(path: Path, name: str | None = None) -> str:
    """A settings file's text: at most :data:`MAX_FILE_BYTES` of UTF-8; else a :class:`SettingsError` naming
    the file (after ``name``, the variable that names it)."""
    where = f"{name}: " if name else ""
    try:
        with open(path, "rb") as file:
            data = file.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise SettingsError(f"{where}cannot read {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_FILE_BYTES:
        raise SettingsError(f"{where}{path} is larger than {MAX_FILE_BYTES // 2**20} MiB; is it the right file?")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise SettingsError(f"{where}{path} is not UTF-8 text (byte 0x{data[exc.start]:02x} on line {line})") from None
    if "\0" in text:
        raise SettingsError(f"{where}{path} is not a text file (it holds NUL bytes)")
    return text


def read_toml(path: Path, variable: str) -> dict[str, Any]:
    """Read the TOML file a setting names; a missing, broken, oversized or too deeply nested file is a
    :class:`SettingsError`."""
    name = f"{ENV_PREFIX}{variable}"
    text = read_text_file(path, name)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{name}: {path} is not valid TOML: {exc}") from None
    except RecursionError:  # the parser recurses once per nested array or inline table
        data = None
    if data is None or _depth(data) > MAX_FILE_DEPTH:
        raise SettingsError(f"{name}: {path} nests tables or arrays more than {MAX_FILE_DEPTH} levels deep")
    return data


def _depth(value: Any) -> int:
    """How deeply ``value``'s dicts and lists nest (iterative: a deep value must not exhaust the stack)."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level + 1)
            if level < MAX_FILE_DEPTH:
                stack.extend((child, level + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def read_sellers_file(path: Path) -> dict[str, SellerSettings]:
    """Parse a TOML sellers file: one ``[sellers.<sellerId>]`` table per seller."""
    table = read_toml(path, "SELLERS_FILE").get("sellers")
    if not isinstance(table, dict):
        raise SettingsError(f"{ENV_PREFIX}SELLERS_FILE: {path} needs a [sellers.<sellerId>] table per seller")
    sellers = {}
    for seller_id, entry in table.items():
        if not is_amazon_id(seller_id):
            raise SettingsError(
                f"{ENV_PREFIX}SELLERS_FILE: [sellers.{seller_id!r}] is not a seller id (letters, digits, '.', '_' "
                "or '-', at most 200, the first a letter or digit)"
            )
        try:
            sellers[seller_id] = SellerSettings.model_validate(entry)
        except ValidationError as exc:
            raise SettingsError(
                f"{ENV_PREFIX}SELLERS_FILE: seller {seller_id}: {_describe_first(exc, prefix='')}"
            ) from None
    return sellers


class DotEnvPrefixedSettingsSource(DotEnvSettingsSource):
    """``.env`` as a settings source, its ``SPREPORTS_*`` variables only.

    A ``.env`` is shared with docker compose and boto3 (``REDIS_PASSWORD``, ``AWS_ACCESS_KEY_ID``, ...):
    with ``extra="forbid"``, pydantic-settings would take each of them for an unknown setting of ours.
    An unknown ``SPREPORTS_*`` variable in it is still an error. (The name starts with ``DotEnv``:
    :func:`_describe_json_error` tells a value of ``.env`` by its source's name.)
    """

    def _load_env_vars(self) -> Mapping[str, str | None]:
        prefix = ENV_PREFIX if self.case_sensitive else ENV_PREFIX.lower()
        return {name: value for name, value in super()._load_env_vars().items() if name.startswith(prefix)}


#: The variables of ``.env`` handed to boto3, which reads the process environment only.
AWS_PREFIX = "AWS_"


def export_aws_variables(env_file: str | Path | None, environ: typing.MutableMapping[str, str]) -> list[str]:
    """Copy ``AWS_*`` variables of ``env_file`` into ``environ`` where not already set; return their names.

    boto3 reads its region, endpoints and credentials from the environment, never from ``.env``: this
    lets a ``.env`` hold them for the product's processes as docker compose's ``env_file`` does.
    """
    if env_file is None or not Path(env_file).is_file():
        return []
    from dotenv import dotenv_values

    exported = []
    for name, value in dotenv_values(env_file).items():
        if name.upper().startswith(AWS_PREFIX) and value is not None and name not in environ:
            environ[name] = value
            exported.append(name)
    return exported


def load_settings(env_file: str | Path | None = ".env") -> Settings:
    """Build the settings from the environment and ``env_file``, failing with one clear line.

    ``AWS_*`` variables of ``env_file`` are exported for boto3 (see :func:`export_aws_variables`).
    """
    _reject_unknown_variables(os.environ)
    if env_file is not None and Path(env_file).is_file():
        read_text_file(Path(env_file))  # python-dotenv would fail on a binary or non-UTF-8 one with a traceback
    export_aws_variables(env_file, os.environ)
    try:
        return Settings(_env_file=env_file)
    except ValidationError as exc:
        raise SettingsError(_describe_first(exc, prefix=ENV_PREFIX)) from None
    except SourceError as exc:
        # pydantic-settings could not JSON-decode a list or section value; its message names only the field.
        raise SettingsError(_describe_json_error(str(exc), env_file)) from None
    except RecursionError:
        # json.loads recurses once per nested array or object of a list or section value.
        raise SettingsError(_describe_deep_json(env_file)) from None


def _known_variables() -> set[str]:
    names = set()
    for name, field in Settings.model_fields.items():
        names.add(f"{ENV_PREFIX}{name}".upper())
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            for sub in annotation.model_fields:
                names.add(f"{ENV_PREFIX}{name}{NESTED_DELIMITER}{sub}".upper())
    return names


def _reject_unknown_variables(environ: Mapping[str, str]) -> None:
    known = _known_variables()
    unknown = sorted(k for k in environ if k.upper().startswith(ENV_PREFIX) and k.upper() not in known)
    if unknown:
        raise SettingsError(f"{unknown[0]}: unknown setting (see the settings table in the README)")


_SOURCE_ERROR = re.compile(r'field "(?P<field>\w+)" from source "(?P<source>\w+)"')


def _describe_json_error(message: str, env_file: str | Path | None) -> str:
    """One line for a value pydantic-settings could not parse as JSON, naming the variable, never the value."""
    match = _SOURCE_ERROR.search(message)
    if match is None:
        return f"a {ENV_PREFIX}* value could not be parsed as JSON"
    field = match["field"]
    from_dotenv = match["source"].startswith("DotEnv")
    values: Mapping[str, str | None] = os.environ
    if from_dotenv and env_file is not None:
        from dotenv import dotenv_values

        values = dotenv_values(env_file)
    where = f" (in {env_file})" if from_dotenv else ""
    culprits = [(name, hint) for name, hint in _json_variables(field) if _not_json(_lookup(values, name))]
    if len(culprits) == 1:
        name, hint = culprits[0]
        return f"{name}{where}: is not valid JSON ({hint})"
    return f"{ENV_PREFIX}{field.upper()}{where}: a value of this setting could not be parsed as JSON"


def _describe_deep_json(env_file: str | Path | None) -> str:
    """One line naming the ``SPREPORTS_*`` value (of the environment or ``env_file``) that nests deepest."""
    values: dict[str, str | None] = {}
    if env_file is not None and Path(env_file).is_file():
        from dotenv import dotenv_values

        values.update((f"{name} (in {env_file})", value) for name, value in dotenv_values(env_file).items())
    values.update(os.environ)
    deepest = max(
        ((_nesting(value or ""), name) for name, value in values.items() if name.upper().startswith(ENV_PREFIX)),
        default=(0, f"a {ENV_PREFIX}* value"),
    )
    return f"{deepest[1]}: nests arrays or objects more than {MAX_FILE_DEPTH} levels deep"


def _nesting(text: str) -> int:
    """How deeply the brackets of a JSON text nest (strings skipped)."""
    level = deepest = 0
    quoted = escaped = False
    for char in text:
        if quoted:
            escaped, quoted = (False, True) if escaped else (char == "\\", char != '"')
        elif char == '"':
            quoted = True
        elif char in "[{":
            level += 1
            deepest = max(deepest, level)
        elif char in "]}":
            level -= 1
    return deepest


def _json_variables(field: str) -> list[tuple[str, str]]:
    """The variables pydantic-settings decodes as JSON for ``field`` (itself, its list/dict parts), with a hint."""
    variables = [(f"{ENV_PREFIX}{field}".upper(), "write it as a JSON object or set its parts one by one")]
    annotation = Settings.model_fields[field].annotation
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        for sub, info in annotation.model_fields.items():
            origin = typing.get_origin(info.annotation)
            if origin in (list, dict):
                hint = 'lists are written as ["a", "b"]' if origin is list else 'write it as {"key": "value"}'
                variables.append((f"{ENV_PREFIX}{field}{NESTED_DELIMITER}{sub}".upper(), hint))
    return variables


def _lookup(values: Mapping[str, str | None], name: str) -> str | None:
    return next((value for key, value in values.items() if key.upper() == name), None)


def _not_json(value: str | None) -> bool:
    if value is None:
        return False
    try:
        json.loads(value)
    except ValueError:
        return True
    return False


def _describe_first(exc: ValidationError, prefix: str) -> str:
    error = exc.errors()[0]
    loc = [str(part) for part in error["loc"]]
    name = (prefix + NESTED_DELIMITER.join(loc)).upper() if prefix else ".".join(loc)
    message = error["msg"].removeprefix("Value error, ")
    if not loc:  # a rule across settings: its message names the variable itself
        return message
    if error["type"] == "extra_forbidden":
        message = "unknown setting (see the settings table in the README)"
    return f"{name}: {message}"


def _require_redis_url(value: str, also: str = "") -> str:
    parts = urlsplit(value)
    if parts.scheme not in REDIS_SCHEMES:
        raise ValueError(f"must be a Redis URL such as redis://host:6379/0{' ' + also if also else ''}")
    if parts.scheme in ("redis", "rediss"):
        _require_host_and_port(value, example="redis://localhost:6379/0")
        # redis-py and kombu take the path for the database number: anything else fails on first use.
        if parts.path not in ("", "/") and not re.fullmatch(r"/[0-9]{1,5}/?", parts.path):
            raise ValueError("has a database that is not a number (redis://host:6379/0)")
    elif not parts.path:
        raise ValueError("needs the socket's path, e.g. redis+socket:///run/redis.sock")
    return value


def _require_http_url(value: str) -> str:
    if urlsplit(value).scheme not in ("http", "https"):
        raise ValueError("must be an http(s) URL")
    return _require_host_and_port(value, example="https://host:443/path")


#: A host name's label (DNS allows 63 characters; underscores appear in container names).
_HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)")


def _require_host_and_port(value: str, example: str) -> str:
    """``value`` when it has a valid host and (if any) a port within 1-65535; else a ValueError saying which part
    is wrong (never the value: it may hold a password)."""
    # urlsplit quietly drops tabs and newlines, and the HTTP and Redis clients refuse what it kept.
    if any(char.isspace() or not char.isprintable() for char in value):
        raise ValueError("holds a space or a control character")
    parts = urlsplit(value)
    try:
        port = parts.port
    except ValueError:
        raise ValueError("has a malformed port (a number from 1 to 65535)") from None
    if port == 0:
        raise ValueError("has a malformed port (a number from 1 to 65535)")
    host = parts.hostname
    if not host:
        raise ValueError(f"needs a host, e.g. {example}")
    if not _valid_host(host):
        raise ValueError("has a malformed host name (labels of 1 to 63 letters, digits, - or _, at most 253 in all)")
    return value


def _valid_host(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    name = host.removesuffix(".")
    return 0 < len(name) <= 253 and all(_HOST_LABEL.fullmatch(label) for label in name.split("."))


def _is_fernet_key(key: str) -> bool:
    """Whether ``key`` is what Fernet takes: 32 bytes, url-safe base64-encoded (decoded as Fernet decodes)."""
    if not key.isascii():
        return False
    try:
        return len(base64.urlsafe_b64decode(key)) == 32
    except (binascii.Error, ValueError):
        return False


#: Passwords that are an example's placeholder, never a real one (``.env.example`` ships such values).
_PLACEHOLDERS = re.compile(r"change[-_ ]?me|changeit|placeholder|^(password|secret|admin)$", re.IGNORECASE)


def basic_auth(value: SecretStr) -> tuple[str, str]:
    """The (user, password) of a ``user:password`` login setting; a ValueError (showing neither) when the
    form is wrong, the password empty or a placeholder."""
    user, colon, password = value.get_secret_value().partition(":")
    if not colon or not user:
        raise ValueError("must be user:password")
    if not password:
        raise ValueError("has an empty password")
    if _PLACEHOLDERS.search(password):
        raise ValueError("has a placeholder password: choose your own (e.g. openssl rand -hex 32)")
    return user, password


MASK = "**********"
# scheme://netloc: the userinfo (user:password@ or token@) ends at the netloc's last "@", as in urlsplit.
_URL_NETLOC = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<netloc>[^/?#]*)")


def masked(settings: Settings) -> dict[str, Any]:
    """The effective settings as plain data, with every secret replaced by ``**********``.

    SecretStr fields are masked by pydantic; URL passwords (``redis://:pw@host``, or any URL with
    userinfo) are masked here, keeping the user name so the URL stays recognisable.
    """
    data: dict[str, Any] = _mask_urls(settings.model_dump(mode="json"))
    return data


def mask_url(value: str) -> str:
    """``value`` with the password of its userinfo (or a userinfo without a user name) masked."""
    match = _URL_NETLOC.match(value)
    if match is None or "@" not in match["netloc"]:
        return value
    userinfo, _, host = match["netloc"].rpartition("@")
    user, colon, _ = userinfo.partition(":")
    masked_userinfo = f"{user}:{MASK}" if colon else MASK
    return f"{match['scheme']}{masked_userinfo}@{host}{value[match.end() :]}"


def _mask_urls(value: Any) -> Any:
    if isinstance(value, str):
        return mask_url(value)
    if isinstance(value, dict):
        return {key: _mask_urls(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_mask_urls(item) for item in value]
    return value
