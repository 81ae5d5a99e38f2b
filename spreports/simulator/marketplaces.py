"""How each marketplace writes values in its documents: decimal mark, date style, currency, time zones.

Amazon's flat files follow the marketplace's habits: ``12,99`` in Germany, France, Italy and Spain,
``12.99`` elsewhere, whole yen in Japan; ``11.03.2024 10:15:00 UTC`` in a European settlement where North
America writes ``2024-03-11 10:15:00 UTC``; ``PST`` in Seattle, ``MEZ`` in Munich, ``JST`` in Tokyo.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta, timezone


@dataclass(frozen=True)
class Marketplace:
    """One marketplace's writing habits.

    - ``style``: which of a column's declared date formats it writes (0 North America, 1 Europe, 2 Japan;
      a column with fewer formats uses its last one).
    - ``zones``: time-zone abbreviations written after a local time, with their offsets.
    """

    country: str
    domain: str
    currency: str
    decimal_mark: str
    style: int
    zones: tuple[tuple[str, timezone], ...]

    @property
    def fraction_digits(self) -> int:
        """Digits after the decimal mark in money (none for the yen)."""
        return 0 if self.currency == "JPY" else 2


def _zone(hours: float) -> timezone:
    return timezone(timedelta(hours=hours))


NORTH_AMERICA, EUROPE, JAPAN = 0, 1, 2
_NA_ZONES = (("PST", _zone(-8)), ("PDT", _zone(-7)), ("UTC", _zone(0)))
_EU_ZONES = (("MEZ", _zone(1)), ("MESZ", _zone(2)), ("CET", _zone(1)), ("UTC", _zone(0)))
_UK_ZONES = (("GMT", _zone(0)), ("BST", _zone(1)), ("UTC", _zone(0)))

MARKETPLACES = {
    "ATVPDKIKX0DER": Marketplace("US", "com", "USD", ".", NORTH_AMERICA, _NA_ZONES),
    "A2EUQ1WTGCTBG2": Marketplace("CA", "ca", "CAD", ".", NORTH_AMERICA, _NA_ZONES),
    "A1AM78C64UM0Y8": Marketplace("MX", "com.mx", "MXN", ".", NORTH_AMERICA, _NA_ZONES),
    "A1PA6795UKMFR9": Marketplace("DE", "de", "EUR", ",", EUROPE, _EU_ZONES),
    "A13V1IB3VIYZZH": Marketplace("FR", "fr", "EUR", ",", EUROPE, _EU_ZONES),
    "APJ6JRA9NG5V4": Marketplace("IT", "it", "EUR", ",", EUROPE, _EU_ZONES),
    "A1RKKUPIHCS9HS": Marketplace("ES", "es", "EUR", ",", EUROPE, _EU_ZONES),
    "A1F83G8C2ARO7P": Marketplace("GB", "co.uk", "GBP", ".", EUROPE, _UK_ZONES),
    "A1VC38T7YXB528": Marketplace("JP", "co.jp", "JPY", ".", JAPAN, (("JST", _zone(9)),)),
}


def marketplace(marketplace_id: str) -> Marketplace:
    """The habits of a marketplace; an unknown one writes as the United States do."""
    return MARKETPLACES.get(marketplace_id, MARKETPLACES["ATVPDKIKX0DER"])
