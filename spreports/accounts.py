"""Which configured credentials serve a selling-partner account.

Notifications name their partner by seller id (``A3TH9S8BH6GOGM``), by merchant account
(``amzn1.merchant.o.<id>``, reduced to the seller id) or by vendor group (``amzn1.vg.<n>``, kept as is).
The credentials are found in this order:

1. the account's own entry: ``[sellers."amzn1.vg.6213651"]`` in the sellers file, or the default
   seller (``SPREPORTS_SELLER_ID``);
2. with exactly one set of credentials configured, that one: an application installed by a single
   selling partner (or vendor) serves every account its queue receives with it, whatever name the
   notifications use. It is logged once per account and process, so a surprise shows in the logs;
3. else none: :class:`~spreports.errors.InvalidRequest` names the account and how to configure it.

The account keeps its own name where the documents are stored; only the credentials are shared.
"""

from __future__ import annotations

import logging
import threading

from spreports.errors import InvalidRequest
from spreports.settings import SellerSettings, Settings

__all__ = ["credentials_for"]

log = logging.getLogger(__name__)

_announced: set[str] = set()
_announced_lock = threading.Lock()


def credentials_for(settings: Settings, account: str) -> tuple[str, SellerSettings]:
    """The name and settings of the credentials that serve ``account`` (see the module docstring)."""
    sellers = settings.sellers()
    own = sellers.get(account)
    if own is not None:
        return account, own
    if len(sellers) == 1:
        [(name, only)] = sellers.items()
        _announce(account, name)
        return name, only
    raise InvalidRequest(
        f"seller {account} is not configured: add [sellers.{_quoted(account)}] to the sellers file "
        f"(SPREPORTS_SELLERS_FILE), or set SPREPORTS_SELLER_ID"
        + (f"; {len(sellers)} sets of credentials are configured, so none is chosen for it" if sellers else "")
    )


def _announce(account: str, name: str) -> None:
    with _announced_lock:
        if account in _announced:
            return
        _announced.add(account)
    log.info("account %s is served with the only configured credentials (seller %s)", account, name)


def _quoted(account: str) -> str:
    # TOML needs quotes around a key with dots (a vendor group's account id).
    return f'"{account}"' if "." in account else account
