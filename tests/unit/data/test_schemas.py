"""The declared schemas: every shipped file is valid, names are unique, a bad file is one clear error."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from spreports.data.schemas import (
    SCHEMA_DIR,
    all_schemas,
    all_tables,
    load_schema,
    load_schemas,
    schema_for,
    table_for,
)
from spreports.errors import SchemaError
from spreports.ids import is_amazon_id

# The report types issue 22 names: each has a declared schema.
NAMED = [
    "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL", "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_LAST_UPDATE_GENERAL",
    "GET_MERCHANT_LISTINGS_ALL_DATA", "GET_MERCHANT_LISTINGS_DATA", "GET_MERCHANT_LISTINGS_INACTIVE_DATA",
    "GET_MERCHANT_CANCELLED_LISTINGS_DATA", "GET_FBA_MYI_UNSUPPRESSED_INVENTORY_DATA", "GET_FBA_MYI_ALL_INVENTORY_DATA",
    "GET_AFN_INVENTORY_DATA", "GET_FBA_INVENTORY_PLANNING_DATA", "GET_STRANDED_INVENTORY_UI_DATA",
    "GET_FLAT_FILE_RETURNS_DATA_BY_RETURN_DATE", "GET_FBA_FULFILLMENT_CUSTOMER_RETURNS_DATA",
    "GET_AMAZON_FULFILLED_SHIPMENTS_DATA_GENERAL", "GET_FBA_REIMBURSEMENTS_DATA", "GET_FBA_ESTIMATED_FBA_FEES_TXT_DATA",
    "GET_FBA_STORAGE_FEE_CHARGES_DATA", "GET_LEDGER_DETAIL_VIEW_DATA", "GET_LEDGER_SUMMARY_VIEW_DATA",
    "GET_V2_SETTLEMENT_REPORT_DATA_FLAT_FILE_V2", "GET_RESTOCK_INVENTORY_RECOMMENDATIONS_REPORT",
    "GET_SALES_AND_TRAFFIC_REPORT", "GET_BRAND_ANALYTICS_SEARCH_TERMS_REPORT", "GET_VENDOR_SALES_REPORT",
    "GET_VENDOR_INVENTORY_REPORT", "GET_XML_BROWSE_TREE_DATA", "GET_XML_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL",
]  # fmt: skip

GOOD = """
report_type = "GET_TEST_DATA"
short_name = "test_data"
format = "tsv"
key = ["sku"]

[[columns]]
name = "sku"
source = "seller-sku"
type = "string"

[[columns]]
name = "price"
source = "price"
type = "decimal"
"""


def write(tmp_path: Path, text: str, name: str = "GET_TEST_DATA.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_every_named_report_type_has_a_schema_and_the_package_has_at_least_25() -> None:
    assert len(all_schemas()) >= 25
    assert [name for name in NAMED if schema_for(name) is None] == []
    assert schema_for("GET_NOTHING_DECLARED") is None


def test_every_shipped_file_loads_under_its_own_report_type() -> None:
    files = sorted(SCHEMA_DIR.glob("*.toml"))
    assert len(files) == len(all_schemas())
    for path in files:
        assert load_schema(path).report_type == path.stem


def test_short_names_and_dataset_names_are_unique_and_fit_their_use() -> None:
    tables = all_tables()
    short_names = [table.short_name for table in tables]
    datasets = [table.dataset for table in tables]
    assert len(set(short_names)) == len(short_names)
    assert len(set(datasets)) == len(datasets)
    assert set(short_names).isdisjoint(datasets)
    # Dataset names become Hive partition values and ids in task arguments: Amazon's id shape.
    assert all(is_amazon_id(dataset) for dataset in datasets)
    assert {"orders", "listings", "inventory"} <= set(short_names)


def test_each_table_is_what_its_format_needs() -> None:
    for schema in all_schemas():
        for table in schema.all_tables():
            assert bool(table.record_path) == (schema.format != "tsv"), table.dataset
            assert all(name in {column.name for column in table.columns} for name in table.key)
            if schema.format == "xml":
                assert table.record_path[0] in ("Result", "AmazonEnvelope")


def test_columns_have_real_types() -> None:
    """Money is decimal, quantities integers, dates dates: not everything a string."""
    orders = schema_for("GET_FLAT_FILE_ALL_ORDERS_DATA_BY_LAST_UPDATE_GENERAL")
    assert orders is not None and orders.key == ("amazon_order_id", "sku")
    types = {column.name: column.type for column in orders.columns}
    assert types["item_price"] == "decimal" and types["quantity"] == "integer"
    assert types["purchase_date"] == "timestamp" and types["is_business_order"] == "boolean"
    counts: dict[str, int] = {}
    for table in all_tables():
        for column in table.columns:
            counts[column.type] = counts.get(column.type, 0) + 1
    assert all(
        counts.get(kind, 0) > 0 for kind in ("string", "integer", "decimal", "boolean", "date", "timestamp", "float")
    )


def test_sales_and_traffic_declares_both_record_lists() -> None:
    schema = schema_for("GET_SALES_AND_TRAFFIC_REPORT")
    assert schema is not None
    assert [(t.dataset, t.record_path) for t in schema.all_tables()] == [
        ("GET_SALES_AND_TRAFFIC_REPORT", ("salesAndTrafficByAsin",)),
        ("GET_SALES_AND_TRAFFIC_REPORT_BY_DATE", ("salesAndTrafficByDate",)),
    ]
    by_date = table_for("GET_SALES_AND_TRAFFIC_REPORT_BY_DATE")
    assert by_date is not None and by_date.short_name == "sales_and_traffic_by_date"
    assert by_date.column("ordered_product_sales_amount").source == "salesByDate.orderedProductSales.amount"
    assert table_for("GET_SALES_AND_TRAFFIC_REPORT") == schema.main
    assert table_for("GET_NOTHING") is None


def test_a_format_may_list_the_ways_marketplaces_write_a_column() -> None:
    settlement = schema_for("GET_V2_SETTLEMENT_REPORT_DATA_FLAT_FILE_V2")
    assert settlement is not None
    assert settlement.main.column("posted_date").format == ("%Y-%m-%d", "%d.%m.%Y")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (('type = "decimal"', 'type = "money"'), "column 'price' type: Input should be"),
        (('name = "price"', 'name = "Price"'), "column 'Price' name: String should match pattern"),
        (('name = "price"', 'name = "sku"'), "column name 'sku' appears twice"),
        (('key = ["sku"]', 'key = ["order_id"]'), "key column 'order_id' is not one of the columns"),
        (('type = "decimal"', 'type = "decimal"\nformat = "%d.%m.%Y"'), "a format is for dates and timestamps"),
        (('type = "decimal"', 'type = "date"\nformat = "%d.%q.%Y"'), "no strptime pattern"),
        (('format = "tsv"', 'format = "csv"'), "format: Input should be 'tsv', 'json' or 'xml'"),
        (('format = "tsv"', 'format = "json"'), "a json document needs a record_path"),
        (('name = "price"', 'nam = "price"'), "column with source 'price' name: Field required"),
        (('type = "decimal"', 'type = "decimal"\nunit = "EUR"'), "column 'price' unit: Extra inputs are not permitted"),
        (('short_name = "test_data"', ""), "short_name: Field required"),
        (('source = "price"', 'source = "seller-sku"'), "column source 'seller-sku' appears twice"),
    ],
)
def test_a_bad_file_is_one_error_naming_the_file_and_the_column(
    tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    path = write(tmp_path, GOOD.replace(*change, 1))
    with pytest.raises(SchemaError) as caught:
        load_schema(path)
    assert str(caught.value).startswith("schema GET_TEST_DATA.toml: ")
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_file_that_is_no_toml_or_names_another_type_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SchemaError, match=r"^schema GET_TEST_DATA.toml: .*line 2"):
        load_schema(write(tmp_path, 'report_type = "A"\n[[columns]\n'))
    with pytest.raises(SchemaError, match="is not the file's name"):
        load_schema(write(tmp_path, GOOD, "GET_OTHER_DATA.toml"))


def test_a_short_name_taken_by_another_file_is_refused(tmp_path: Path) -> None:
    write(tmp_path, GOOD)
    write(tmp_path, GOOD.replace("GET_TEST_DATA", "GET_OTHER_DATA"), "GET_OTHER_DATA.toml")
    with pytest.raises(SchemaError, match=r"name .test_data. is already taken by GET_OTHER_DATA\.toml"):
        load_schemas(tmp_path)


def test_the_files_are_plain_toml_readable_without_the_package() -> None:
    """Other tools (a notebook, a dbt project) can read the same files: nothing in them is Python."""
    raw = tomllib.loads((SCHEMA_DIR / "GET_MERCHANT_LISTINGS_ALL_DATA.toml").read_text(encoding="utf-8"))
    assert raw["columns"][0] == {"name": "item_name", "source": "item-name", "type": "string"}


def test_the_wheel_carries_the_schema_files() -> None:
    pyproject = tomllib.loads((SCHEMA_DIR.parents[2] / "pyproject.toml").read_text(encoding="utf-8"))
    assert "schemas/*.toml" in pyproject["tool"]["setuptools"]["package-data"]["spreports.data"]
