"""Flower as the product runs it: on loopback unless told otherwise, never open beyond it, ``/metrics`` behind its login.

Flower listens on every interface by default and asks for no login; with ``--basic-auth`` (or OAuth,
``--auth``) it protects its pages and ``/api/*``, but not ``/metrics``, which shows every task name,
worker and queue. :func:`flower_arguments` decides the address and refuses an open Flower beyond
loopback; :func:`protect_metrics` puts ``/metrics`` behind the same login as the rest (Prometheus
scrapes it with ``basic_auth``). ``/healthcheck`` alone stays open, for container health checks.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence

from spreports.errors import SettingsError

#: Where ``spreports flower`` listens when no ``--address`` is given.
DEFAULT_ADDRESS = "127.0.0.1"
#: Flower's own options (and their ``FLOWER_*`` variables) that make it ask for a login.
_AUTH_OPTIONS = ("basic_auth", "auth")


def _option(args: Sequence[str], environ: Mapping[str, str], name: str) -> str | None:
    """The value of Flower option ``name`` from ``--name=value`` / ``--name value`` or ``FLOWER_NAME``."""
    flags = {f"--{name}", f"--{name.replace('_', '-')}"}
    value = environ.get(f"FLOWER_{name.upper()}")
    for index, arg in enumerate(args):
        flag, equals, rest = arg.partition("=")
        if flag in flags:
            value = rest if equals else (args[index + 1] if index + 1 < len(args) else "")
    return value


def is_loopback(address: str) -> bool:
    """Whether ``address`` (an IP address or ``localhost``) is this host's loopback; "" (every interface) is not."""
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False  # a host name, or "" (every interface)


def flower_arguments(args: Sequence[str], environ: Mapping[str, str]) -> list[str]:
    """Flower's arguments with the address made explicit; a :class:`SettingsError` if it would be open.

    Without ``--address`` (or ``FLOWER_ADDRESS``) Flower listens on loopback only. Any other address
    needs a login: ``--basic-auth`` / ``FLOWER_BASIC_AUTH`` or ``--auth`` (OAuth).
    """
    arguments = list(args)
    address = _option(arguments, environ, "address")
    if address is None:
        address = DEFAULT_ADDRESS
        arguments.append(f"--address={address}")
    if not is_loopback(address) and not any(_option(arguments, environ, name) for name in _AUTH_OPTIONS):
        where = address or "every interface"
        raise SettingsError(
            f"Flower would listen on {where} with no login: set FLOWER_BASIC_AUTH=user:password "
            "(or pass --basic-auth), or listen on loopback only (--address=127.0.0.1)"
        )
    return arguments


def leave_logging_to_the_product(args: Sequence[str], environ: Mapping[str, str]) -> list[str]:
    """Flower's arguments with tornado's own logging set-up off (``--logging=none``) unless asked for.

    The command has set up the fleet's one format (text or JSON) and level on the root logger; tornado's
    set-up would set the root level to ``--logging`` (INFO, whatever ``SPREPORTS_LOG_LEVEL`` says) and,
    on a root logger without handlers, add a handler of its own format.
    """
    arguments = list(args)
    if _option(arguments, environ, "logging") is None:
        arguments.append("--logging=none")
    return arguments


def protect_metrics() -> None:
    """Make Flower's ``/metrics`` ask for the login its other pages ask for (none when Flower has none)."""
    import tornado.web
    from flower import urls
    from flower.views.monitor import Metrics

    class AuthenticatedMetrics(Metrics):  # type: ignore[misc]  # flower ships no types
        """Flower's metrics page behind ``get_current_user`` (basic auth answers 401 without it)."""

        @tornado.web.authenticated
        async def get(self) -> None:
            await super().get()

    # Flower's app reads this very list when it starts: replacing the entry in place is enough.
    for index, handler in enumerate(urls.handlers):
        if isinstance(handler, tuple) and handler[1] is Metrics:
            urls.handlers[index] = (handler[0], AuthenticatedMetrics, *handler[2:])
