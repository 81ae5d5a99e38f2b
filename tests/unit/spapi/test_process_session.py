"""The pooled session reads the environment's proxies and CA bundle once per origin, as requests would."""

from __future__ import annotations

import pytest
import requests

from spreports.spapi.transport import ProcessSession


def settings_for(session: requests.Session, url: str) -> dict[str, object]:
    prepared = session.prepare_request(requests.Request("GET", url))
    assert prepared.url is not None
    return dict(session.merge_environment_settings(prepared.url, {}, None, None, None))


@pytest.mark.parametrize(
    "url",
    [
        "https://sellingpartnerapi-na.amazon.com/reports/2021-06-30/reports/1",
        "https://skip.example.net:8443/x",
        "http://127.0.0.1:8123/d",
    ],
)
def test_same_settings_as_a_plain_session(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", "skip.example.net,127.0.0.1")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/bundle.pem")
    assert settings_for(ProcessSession(), url) == settings_for(requests.Session(), url)


def test_environment_read_once_per_origin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    session = ProcessSession()
    url = "https://sellingpartnerapi-eu.amazon.com/reports/2021-06-30/documents/D1"
    assert settings_for(session, url)["proxies"] == {"https": "http://proxy.internal:3128"}
    monkeypatch.delenv("HTTPS_PROXY")
    # The process's environment is taken as fixed: the answer for this origin is kept.
    assert settings_for(session, url)["proxies"] == {"https": "http://proxy.internal:3128"}


def test_explicit_settings_still_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/bundle.pem")
    session = ProcessSession()
    session.verify = False
    url = "https://example.org/x"
    merged = session.merge_environment_settings(url, {"https": "http://other:1"}, None, "/my/ca.pem", None)
    assert merged["proxies"]["https"] == "http://other:1"
    assert merged["verify"] == "/my/ca.pem"
    without_env = ProcessSession()
    without_env.trust_env = False
    assert without_env.merge_environment_settings(url, {}, None, None, None)["proxies"] == {}
