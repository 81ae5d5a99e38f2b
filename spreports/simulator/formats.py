# ruff: noqa: RUF001 - the look-alike non-ASCII characters in product names are the point of them
"""What simulated report documents look like: header rows, row makers and charsets per report type.

Each format is a prefix, a pool of distinct rows and a suffix, chosen so that *any* number of rows
between prefix and suffix is a well-formed document (tab-separated lines; XML elements; JSON array
items that begin with a comma after the first one, which lives in the prefix).
"""

from __future__ import annotations

import json
import random

# The declared schemas are facts about Amazon's documents, read from the same files the product reads.
from spreports.data.schemas import schema_for

# The product's one list of restricted types: a fact about Amazon, not client code (it imports nothing).
from spreports.report_types import RESTRICTED_REPORT_TYPES
from spreports.simulator.declared import DEFAULT_MALFORMED_RATE, DeclaredLayout, Format, declared_layout

# Python codec names for the charset labels Amazon puts in Content-Type.
CODECS = {
    "UTF-8": "utf-8",
    "Cp1252": "cp1252",
    "windows-1252": "cp1252",
    "windows-31j": "cp932",
    "Shift_JIS": "shift_jis",
}
JP_MARKETPLACE = "A1VC38T7YXB528"

LISTINGS_HEADER = (
    "item-name", "item-description", "listing-id", "seller-sku", "price", "quantity", "open-date", "image-url",
    "item-is-marketplace", "product-id-type", "zshop-shipping-fee", "item-note", "item-condition",
    "zshop-category1", "zshop-browse-path", "zshop-storefront-feature", "asin1", "asin2", "asin3",
    "will-ship-internationally", "expedited-shipping", "zshop-boldface", "product-id",
    "bid-for-featured-placement", "add-delete", "pending-quantity", "fulfillment-channel",
    "merchant-shipping-group", "status",
)  # fmt: skip
ORDERS_HEADER = (
    "amazon-order-id", "merchant-order-id", "purchase-date", "last-updated-date", "order-status",
    "fulfillment-channel", "sales-channel", "order-channel", "url", "ship-service-level", "product-name", "sku",
    "asin", "item-status", "quantity", "currency", "item-price", "item-tax", "shipping-price", "shipping-tax",
    "gift-wrap-price", "gift-wrap-tax", "item-promotion-discount", "ship-promotion-discount", "ship-city",
    "ship-state", "ship-postal-code", "ship-country", "promotion-ids", "is-business-order",
    "purchase-order-number", "price-designation",
)  # fmt: skip

# Product names with the non-ASCII characters real catalogues carry, per script.
WESTERN_NAMES = (
    "Kaffeebecher Edelstahl – 350 ml", "Crème brûlée Set (4 Förmchen)", "Café-Tasse »Größe L«",
    "Lámpara LED de escritorio – señal", "Naïve Art Poster 50×70 cm", "Smörgåsbord Servierbrett Eiche",
    "Premium HDMI Kabel™ 2 m", "Geschenkgutschein 25 € – Überraschung", "Entrée – Jeu de société",
    "Müsli Mischung ½ kg", "Garden Hose 15 m, green", "Stainless Steel Water Bottle 750 ml",
)  # fmt: skip
JAPANESE_NAMES = (
    "ステンレス製マグカップ 350ml", "和風 茶碗 セット（５客）", "ＬＥＤ デスクライト 調光", "日本製 タオル ５枚組",
    "抹茶 パウダー 100g", "ワイヤレス イヤホン 黒",
)  # fmt: skip
CITIES = (("Köln", "NRW", "DE"), ("Málaga", "Andalucía", "ES"), ("Seattle", "WA", "US"), ("Besançon", "Doubs", "FR"))
JP_CITIES = (("東京都", "渋谷区", "JP"), ("大阪府", "大阪市", "JP"))


def format_kind(report_type: str) -> str:
    """``listings``, ``orders``, ``xml`` or ``json``: the generic layout of a type without a declared schema."""
    if "XML" in report_type or report_type == "GET_MERCHANTS_LISTINGS_FYP_REPORT_XML":
        return "xml"
    if report_type.endswith("_REPORT") and report_type.startswith(
        ("GET_SALES_AND_TRAFFIC", "GET_BRAND_ANALYTICS", "GET_VENDOR")
    ):
        return "json"
    if "ORDER" in report_type or "SHIPMENT" in report_type or report_type in RESTRICTED_REPORT_TYPES:
        return "orders"
    return "listings"


def default_charset(report_type: str, marketplace_ids: tuple[str, ...]) -> str:
    """The charset Amazon labels a document with: Cp1252 for flat files (windows-31j in Japan), else UTF-8."""
    schema = schema_for(report_type)
    if (schema.format if schema else format_kind(report_type)) in ("xml", "json"):
        return "UTF-8"
    return "windows-31j" if JP_MARKETPLACE in marketplace_ids else "Cp1252"


def build_format(
    report_type: str, charset: str, seed: int, marketplace: str, malformed_rate: float = DEFAULT_MALFORMED_RATE
) -> Format:
    """The layout of a document of ``report_type`` whose text is encodable in ``charset``.

    A type with a declared schema is generated from it (``malformed_rate``: the share of malformed
    records); the others get the generic listings, orders, XML or JSON layouts.
    """
    declared = declared_records(report_type, charset, seed, marketplace, malformed_rate)
    if declared is not None:
        return declared.format
    names, cities = _names(charset)
    rng = random.Random(seed)
    kind = format_kind(report_type)
    if kind == "xml":
        return _xml(rng, names, charset)
    if kind == "json":
        return _json(rng, names, report_type, marketplace)
    if kind == "orders":
        return _tsv(ORDERS_HEADER, tuple(_order_row(rng, names, cities, i) for i in range(211)))
    return _tsv(LISTINGS_HEADER, tuple(_listing_row(rng, names, i) for i in range(211)))


def _names(charset: str) -> tuple[tuple[str, ...], tuple[tuple[str, str, str], ...]]:
    """Product names and cities whose text is encodable in ``charset``."""
    codec = CODECS[charset]
    if codec == "utf-8":
        return WESTERN_NAMES + JAPANESE_NAMES, CITIES
    if codec in ("cp932", "shift_jis"):
        return JAPANESE_NAMES, JP_CITIES
    return WESTERN_NAMES, CITIES


def declared_records(
    report_type: str, charset: str, seed: int, marketplace: str, malformed_rate: float = DEFAULT_MALFORMED_RATE
) -> DeclaredLayout | None:
    """The document of a type with a declared schema, record by record with its typed values; else None."""
    schema = schema_for(report_type)
    if schema is None:
        return None
    names, cities = _names(charset)
    return declared_layout(
        schema,
        names=names,
        cities=cities,
        seed=seed,
        marketplace_id=marketplace,
        charset=charset,
        malformed_rate=malformed_rate,
    )


def _tsv(header: tuple[str, ...], rows: tuple[tuple[str, ...], ...]) -> Format:
    return Format("text/plain", "\t".join(header) + "\n", tuple("\t".join(row) + "\n" for row in rows), "")


def _asin(rng: random.Random) -> str:
    return "B0" + "".join(rng.choice("0123456789ABCDEFGHJKLMNPQRSTUVWXYZ") for _ in range(8))


def _listing_row(rng: random.Random, names: tuple[str, ...], i: int) -> tuple[str, ...]:
    name = rng.choice(names)
    asin = _asin(rng)
    price = f"{rng.randint(199, 19999) / 100:.2f}"
    return (
        name, f"{name} - description {i}", f"{rng.randint(10**9, 10**10 - 1)}ABC", f"SKU-{i:05d}-{rng.randint(0, 999):03d}",
        price, str(rng.randint(0, 500)), f"2024-0{rng.randint(1, 9)}-1{rng.randint(0, 9)} 10:1{i % 10}:00 PST", "",
        "y", "1", "", "", "11", "", "", "", asin, "", "", "", "", "", asin, "", "", "0",
        rng.choice(("DEFAULT", "AMAZON_NA")), "Migrated Template", rng.choice(("Active", "Inactive")),
    )  # fmt: skip


def _order_row(
    rng: random.Random, names: tuple[str, ...], cities: tuple[tuple[str, str, str], ...], i: int
) -> tuple[str, ...]:
    order_id = f"{rng.randint(100, 999)}-{rng.randint(10**6, 10**7 - 1)}-{rng.randint(10**6, 10**7 - 1)}"
    city, state, country = rng.choice(cities)
    stamp = f"2024-03-{rng.randint(10, 28)}T{rng.randint(10, 23)}:0{i % 10}:00+00:00"
    price = rng.randint(199, 19999) / 100
    return (
        order_id, "", stamp, stamp, rng.choice(("Shipped", "Pending", "Unshipped")), rng.choice(("Amazon", "Merchant")),
        "Amazon.com", "", "", "Standard", rng.choice(names), f"SKU-{i:05d}", _asin(rng), "Shipped",
        str(rng.randint(1, 4)), "EUR" if country in ("DE", "ES", "FR") else ("JPY" if country == "JP" else "USD"),
        f"{price:.2f}", f"{price * 0.19:.2f}", "4.99", "0.95", "", "", "", "", city, state,
        f"{rng.randint(10000, 99999)}", country, "", rng.choice(("true", "false")), "", "",
    )  # fmt: skip


def _xml(rng: random.Random, names: tuple[str, ...], charset: str) -> Format:
    rows = []
    for i in range(173):
        node = 1000 + i * 7
        name = rng.choice(names).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        rows.append(
            f'<Node><browseNodeId>{node}</browseNodeId><browseNodeAttributes count="0"/>'
            f"<browseNodeName>{name}</browseNodeName><browseNodeStoreContextName>Home</browseNodeStoreContextName>"
            f"<browsePathById>1,{node}</browsePathById><browsePathByName>Home,{name}</browsePathByName>"
            f"<hasChildren>{'true' if i % 3 else 'false'}</hasChildren>"
            f"<productTypeDefinitions>HOME</productTypeDefinitions></Node>\n"
        )
    prefix = f'<?xml version="1.0" encoding="{charset}"?>\n<Result>\n'
    return Format("text/xml", prefix, tuple(rows), "</Result>\n")


def _json(rng: random.Random, names: tuple[str, ...], report_type: str, marketplace: str) -> Format:
    def item() -> str:
        units = rng.randint(0, 40)
        return json.dumps(
            {
                "parentAsin": _asin(rng),
                "childAsin": _asin(rng),
                "title": rng.choice(names),
                "salesByAsin": {
                    "unitsOrdered": units,
                    "orderedProductSales": {"amount": round(units * 19.99, 2), "currencyCode": "USD"},
                },
                "trafficByAsin": {"sessions": units * 3, "pageViews": units * 5},
            },
            ensure_ascii=False,
        )

    spec = {
        "reportType": report_type,
        "reportOptions": {"asinGranularity": "CHILD"},
        "dataStartTime": "2024-03-01",
        "dataEndTime": "2024-03-01",
        "marketplaceIds": [marketplace],
    }
    prefix = '{"reportSpecification":' + json.dumps(spec) + ',"salesAndTrafficByAsin":[\n' + item()
    return Format("application/json", prefix, tuple(",\n" + item() for _ in range(157)), "\n]}\n")
