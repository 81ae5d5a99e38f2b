"""The shape of every id that comes from outside: Amazon's ids, as the product accepts them anywhere.

Seller ids (``A3TH9S8BH6GOGM``), vendor groups (``amzn1.vg.6213651``), report ids, document ids
(``amzn1.spdoc.1.4.na.<uuid>.T<n>.<n>``), notification ids and report types are all letters, digits,
``.``, ``_`` and ``-``, at most 200 characters, starting with a letter or a digit. Every id that enters
the product (a notification, a task's arguments, a producer, the command line, the sellers file) is held
to this shape before it is used, because ids become parts of storage paths, of URL paths and of Redis
keys: an id with a ``:`` would let two (seller, document) pairs share the key ``<seller>:<document>``
(seller ``S:X`` with document ``d`` and seller ``S`` with document ``X:d``), and ``..`` would climb a path.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import StringConstraints

__all__ = ["ID_PATTERN", "MAX_ID_LENGTH", "AmazonId", "is_amazon_id"]

MAX_ID_LENGTH = 200
ID_PATTERN = rf"^[A-Za-z0-9][A-Za-z0-9._-]{{0,{MAX_ID_LENGTH - 1}}}$"
_ID = re.compile(ID_PATTERN)

#: A string in the shape of Amazon's ids, for pydantic models.
AmazonId = Annotated[str, StringConstraints(pattern=ID_PATTERN)]


def is_amazon_id(value: object) -> bool:
    """Whether ``value`` is a string in the shape of Amazon's ids."""
    return isinstance(value, str) and _ID.fullmatch(value) is not None
