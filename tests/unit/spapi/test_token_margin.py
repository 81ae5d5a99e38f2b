"""Token reuse whatever the token's lifetime: Amazon's hour, or a simulator's accelerated minute."""

from __future__ import annotations

import fakeredis
import pytest

from spreports.spapi.sealing import TokenSealer
from spreports.spapi.tokens import FetchedToken, LocalTokens, SharedTokenCache, refresh_margin

SEALER = TokenSealer.derived_from("test-secret")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(("lifetime", "reused_for"), [(3600.0, 3540.0), (60.0, 54.0), (1.0, 0.9)])
def test_a_token_is_reused_for_most_of_its_life(lifetime: float, reused_for: float) -> None:
    fetched: list[int] = []

    def fetch() -> FetchedToken:
        fetched.append(1)
        return FetchedToken(f"Atza|token-{len(fetched)}", lifetime)

    clock = Clock()
    client = fakeredis.FakeRedis()
    cache = SharedTokenCache(client, "lwa:margin", fetch, sealer=SEALER, clock=clock, local=LocalTokens())
    for _ in range(100):
        assert cache.token() == "Atza|token-1"
    clock.now += reused_for - 0.01
    assert cache.token() == "Atza|token-1"
    assert len(fetched) == 1
    # Stale past its margin: a fresh one (Redis's copy lapsed with the same margin).
    clock.now += 0.02
    client.delete(cache.key)  # fakeredis's TTL runs on the real clock; the test's clock moved instead
    assert cache.token() == "Atza|token-2"


def test_the_margin_is_sixty_seconds_for_amazons_tokens() -> None:
    assert refresh_margin(3600) == 60
    assert refresh_margin(60) == pytest.approx(6)
    assert refresh_margin(0) == 0
