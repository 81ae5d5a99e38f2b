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


_NA = ((("PST", _zone(-8)), ("PDT", _zone(-7)), ("UTC", _zone(0))), 0)
_EU = ((("MEZ", _zone(1)), ("MESZ", _zone(2)), ("CET", _zone(1)), ("UTC", _zone(0))), 1)
_UK = ((("GMT", _zone(0)), ("BST", _zone(1)), ("UTC", _zone(0))), 1)

MARKETPLACES = {
    "ATVPDKIKX0DER": Marketplace("US", "USD", ".", _NA[1], _NA[0]),
    "A2EUQ1WTGCTBG2": Marketplace("CA", "CAD", ".", _NA[1], _NA[0]),
    "A1AM78C64UM0Y8": Marketplace("MX", "MXN", ".", _NA[1], _NA[0]),
    "A1PA6795UKMFR9": Marketplace("DE", "EUR", ",", _EU[1], _EU[0]),
    "A13V1IB3VIYZZH": Marketplace("FR", "EUR", ",", _EU[1], _EU[0]),
    "APJ6JRA9NG5V4": Marketplace("IT", "EUR", ",", _EU[1], _EU[0]),
    "A1RKKUPIHCS9HS": Marketplace("ES", "EUR", ",", _EU[1], _EU[0]),
    "A1F83G8C2ARO7P": Marketplace("GB", "GBP", ".", _UK[1], _UK[0]),
    "A1VC38T7YXB528": Marketplace("JP", "JPY", ".", 2, (("JST", _zone(9)),)),
}


def marketplace(marketplace_id: str) -> Marketplace:
    """The habits of a marketplace; an unknown one writes as the United States do."""
    return MARKETPLACES.get(marketplace_id, MARKETPLACES["ATVPDKIKX0DER"])
