"""Which credentials serve an account: its own entry, else the only one configured, else a clear error."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from spreports.accounts import credentials_for
from spreports.errors import InvalidRequest
from spreports.settings import Settings


def _settings(tmp_path: Path, sellers: dict[str, str]) -> Settings:
    lines = [f'[sellers."{name}"]\nrefresh_token = "{token}"\n' for name, token in sellers.items()]
    path = tmp_path / "sellers.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return Settings(sellers_file=path, lwa={"client_id": "id", "client_secret": "secret"})


def test_a_vendor_account_routes_to_its_own_entry(tmp_path: Path) -> None:
    settings = _settings(tmp_path, {"A1SELLER": "Atzr|a", "amzn1.vg.6213651": "Atzr|v"})
    name, seller = credentials_for(settings, "amzn1.vg.6213651")
    assert name == "amzn1.vg.6213651" and seller.refresh_token.get_secret_value() == "Atzr|v"
    assert credentials_for(settings, "A1SELLER")[0] == "A1SELLER"


def test_single_credentials_serve_every_account_logged_once_per_account(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = _settings(tmp_path, {"MYSELF": "Atzr|only"})
    with caplog.at_level(logging.INFO, logger="spreports.accounts"):
        for _ in range(3):
            assert credentials_for(settings, "amzn1.vg.777")[0] == "MYSELF"
        assert credentials_for(settings, "A9OTHER")[0] == "MYSELF"
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "account amzn1.vg.777 is served with the only configured credentials (seller MYSELF)",
        "account A9OTHER is served with the only configured credentials (seller MYSELF)",
    ]
    assert "Atzr" not in caplog.text


def test_several_credentials_and_no_entry_is_an_error_naming_the_fix(tmp_path: Path) -> None:
    settings = _settings(tmp_path, {"A1": "Atzr|a", "A2": "Atzr|b"})
    with pytest.raises(InvalidRequest) as caught:
        credentials_for(settings, "amzn1.vg.42")
    assert '[sellers."amzn1.vg.42"]' in str(caught.value) and "2 sets of credentials" in str(caught.value)


def test_no_credentials_at_all_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidRequest, match="seller A1 is not configured"):
        credentials_for(Settings(), "A1")
