"""The simulated clock, the token buckets, the config and the fault switches."""

from __future__ import annotations

import ast
import hashlib
import time
from pathlib import Path

import pytest
from pydantic import SecretStr

from spreports.settings import Settings
from spreports.simulator import Faults, SimulatorConfig, config_from_settings
from spreports.simulator.clock import SimClock, iso, parse_iso
from spreports.simulator.ratelimit import USAGE_PLANS, RateLimiter

PACKAGE = Path(__file__).resolve().parents[3] / "spreports" / "simulator"


def test_clock_runs_at_its_speed_and_advances() -> None:
    clock = SimClock(speed=1000.0)
    start = clock.seconds()
    time.sleep(0.05)  # the behaviour under test: simulated time runs at `speed` times real time
    assert clock.seconds() - start >= 40
    before = clock.now()
    clock.advance(3600)
    assert (clock.now() - before).total_seconds() >= 3600
    with pytest.raises(ValueError):
        clock.advance(-1)
    assert clock.real_seconds(300) == pytest.approx(0.3)


def test_iso_round_trip() -> None:
    moment = parse_iso("2024-03-10T20:11:24.123Z")
    assert iso(moment) == "2024-03-10T20:11:24.123Z"
    assert parse_iso("2020-09-23T22:52:59+00:00").tzinfo is not None


def test_bucket_burst_and_refill_follow_simulated_time() -> None:
    clock = SimClock()
    limiter = RateLimiter(clock)
    assert all(limiter.allow("A1", "createReport") for _ in range(15))
    assert not limiter.allow("A1", "createReport")
    assert limiter.allow("A2", "createReport")  # buckets are per seller
    clock.advance(60)  # 0.0167 per second: one token a minute
    assert limiter.allow("A1", "createReport")
    assert not limiter.allow("A1", "createReport")
    assert RateLimiter(clock, enabled=False).allow("A1", "createReport")
    assert USAGE_PLANS["getReport"].rate == 2.0 and USAGE_PLANS["getReport"].burst == 15


def test_faults_take_and_update() -> None:
    faults = Faults(throttle=2)
    assert [faults.take("throttle") for _ in range(3)] == [True, True, False]
    with pytest.raises(ValueError):
        faults.update({"nope": 1})
    with pytest.raises(ValueError):
        faults.update({"throttle": "many"})
    with pytest.raises(ValueError):
        faults.take("slow_seconds")


def test_config_from_settings_uses_configured_credentials_or_generates_them(tmp_path: Path) -> None:
    generated = config_from_settings(Settings())
    assert generated.client_id.startswith("amzn1.application-oa2-client.") and len(generated.sellers) == 1
    sellers = tmp_path / "sellers.toml"
    sellers.write_text('[sellers.A2EU]\nrefresh_token = "Atzr|eu"\nmarketplace_ids = ["A1PA6795UKMFR9"]\n')
    settings = Settings(seller_id="A1US", lwa={"client_id": "cid", "client_secret": SecretStr("sec"), "refresh_token": SecretStr("Atzr|us")},
                        sellers_file=sellers, sqs={"application_id": "amzn1.sellerapps.app.mine"})  # fmt: skip
    config = config_from_settings(settings, speed=10.0)
    assert (config.client_id, config.client_secret, config.application_id, config.speed) == (
        "cid",
        "sec",
        "amzn1.sellerapps.app.mine",
        10.0,
    )
    assert {s.seller_id: s.refresh_token for s in config.sellers} == {"A1US": "Atzr|us", "A2EU": "Atzr|eu"}
    assert config.seller_by_refresh_token("Atzr|eu").marketplace_ids == ("A1PA6795UKMFR9",)  # type: ignore[union-attr]
    with pytest.raises(ValueError):
        SimulatorConfig(speed=0)


def test_the_simulator_shares_no_code_with_the_client() -> None:
    for path in PACKAGE.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            assert not any(name.startswith("spreports.spapi") for name in names), path.name


def test_shipped_models_are_amazons_unmodified() -> None:
    expected = {
        "reports_2021-06-30.json": "d72db9e5280262a92933a0e45e2207c150272f1d66177b2517c20671d69c732c",
        "notifications.json": "6a5e945f2a53a91b9b97c27cd4570dc399db3dde2b777f623fc226fbcdc8469a",
        "ReportProcessingFinishedNotification.json": "e61c27a7b367e07541af0ccda3245342ed48e4e0a9670d7a9e9e09da4083e151",
        "tokens_2021-03-01.json": "3cd09ae7f218c83f32536a894cb8c42f2191c94b9c27f6bcf0a164442089b061",
    }
    for name, digest in expected.items():
        assert hashlib.sha256((PACKAGE / "models" / name).read_bytes()).hexdigest() == digest
