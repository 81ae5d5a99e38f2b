"""Login with Amazon: exchange credentials for SP-API access tokens.

Two grants: ``refresh_token`` (one per seller, for seller-authorised operations) and
``client_credentials`` with a scope (``sellingpartnerapi::notifications``, for grantless operations).
LWA's ``{"error": ..., "error_description": ...}`` answers become our exception tree: credentials
problems are permanent and name the seller, outages are transient. No message, log line or repr ever
holds the client secret, a refresh token or an access token.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import requests
from pydantic import SecretStr

from spreports.errors import (
    AuthenticationError,
    InvalidRequest,
    RateLimited,
    ServiceUnavailable,
    SpreportsError,
    UnexpectedResponse,
)
from spreports.spapi.tokens import FetchedToken

log = logging.getLogger(__name__)

NOTIFICATIONS_SCOPE = "sellingpartnerapi::notifications"
DEFAULT_EXPIRES_IN = 3600.0
_PERMANENT = {"invalid_grant", "invalid_client", "unauthorized_client", "access_denied", "invalid_scope"}
_TRANSIENT = {"server_error", "temporarily_unavailable"}
_MAX_DESCRIPTION = 200


@dataclass(frozen=True)
class LwaCredentials:
    """The application's LWA client and the token endpoint."""

    client_id: str
    client_secret: SecretStr
    token_url: str


class LwaClient:
    """Calls the LWA token endpoint with the application's credentials."""

    def __init__(self, credentials: LwaCredentials, session: requests.Session, timeout: tuple[float, float]) -> None:
        self._credentials = credentials
        self._session = session
        self._timeout = timeout

    def refresh_token_grant(self, refresh_token: SecretStr, *, who: str) -> FetchedToken:
        """An access token for the seller whose refresh token this is (``who`` names it in errors)."""
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token.get_secret_value()}
        return self._grant(form, who=who, secrets=(refresh_token.get_secret_value(),))

    def client_credentials_grant(self, scope: str = NOTIFICATIONS_SCOPE) -> FetchedToken:
        """An access token for grantless operations of ``scope``."""
        form = {"grant_type": "client_credentials", "scope": scope}
        return self._grant(form, who=f"the application (grantless scope {scope})", secrets=())

    def _grant(self, form: dict[str, str], *, who: str, secrets: tuple[str, ...]) -> FetchedToken:
        creds = self._credentials
        form = {**form, "client_id": creds.client_id, "client_secret": creds.client_secret.get_secret_value()}
        try:
            # Never follow a redirect: it would post the refresh token and the client secret to another host.
            response = self._session.post(
                creds.token_url,
                data=form,
                headers={"Content-Type": "application/x-www-form-urlencoded;charset=UTF-8"},
                timeout=self._timeout,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            raise ServiceUnavailable(f"LWA token endpoint unreachable for {who} ({type(exc).__name__})") from None
        if response.status_code == 200:
            return _parse_token(response, who)
        raise lwa_error(response, who, secrets=(*secrets, creds.client_secret.get_secret_value()))


def _parse_token(response: requests.Response, who: str) -> FetchedToken:
    try:
        body = response.json()
        token = body["access_token"]
    except (ValueError, KeyError, TypeError):
        raise ServiceUnavailable(f"LWA answered 200 without a usable access token for {who}") from None
    if not isinstance(token, str) or not token:
        raise ServiceUnavailable(f"LWA answered 200 without a usable access token for {who}")
    # The token is good whatever its expires_in says: an odd one is bounded where the token is cached.
    return FetchedToken(value=token, expires_in=_seconds(body.get("expires_in", DEFAULT_EXPIRES_IN)))


def _seconds(value: object) -> float:
    """A JSON number of seconds; NaN for anything else (a string, a bool, null), which the bounds refuse."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return math.nan
    try:
        return float(value)
    except OverflowError:  # an integer beyond any float
        return math.inf


def lwa_error(response: requests.Response, who: str, *, secrets: tuple[str, ...] = ()) -> SpreportsError:
    """The exception for an LWA error answer; the message names ``who``, never a credential."""
    code, description = _error_fields(response)
    description = _scrub(description, secrets)
    detail = f"{code}: {description}" if description else code
    status = response.status_code
    error: SpreportsError
    if 300 <= status < 400:
        error = UnexpectedResponse(
            f"LWA answered HTTP {status} for {who}, a redirect; not followed, so that no credential goes to another host"
        )
    elif code in _TRANSIENT or status >= 500:
        error = ServiceUnavailable(f"LWA is unavailable for {who}: HTTP {status} {detail}")
    elif status == 429:
        error = RateLimited(f"LWA throttled the token request for {who}", retry_after=1.0)
    elif code == "invalid_request":
        error = InvalidRequest(f"LWA rejected the token request for {who}: {detail}")
    elif code in _PERMANENT or 400 <= status < 500:
        error = AuthenticationError(f"LWA refused the credentials of {who}: {detail}")
    else:
        error = ServiceUnavailable(f"LWA answered HTTP {status} for {who}")
    error.status = status
    log.warning("LWA token request for %s failed: HTTP %s %s", who, status, code)
    return error


def _error_fields(response: requests.Response) -> tuple[str, str]:
    try:
        body = response.json()
    except ValueError:
        return "unknown_error", ""
    if not isinstance(body, dict):
        return "unknown_error", ""
    code = str(body.get("error") or "unknown_error")[:64]
    description = str(body.get("error_description") or "")[:_MAX_DESCRIPTION]
    return code, description


def _scrub(text: str, secrets: tuple[str, ...]) -> str:
    # LWA does not echo credentials today; if it ever does, they still never reach a message.
    for secret in secrets:
        if secret:
            text = text.replace(secret, "**********")
    return text
