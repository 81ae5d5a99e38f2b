"""Amazon's official API models, as the repository ships them (unmodified copies, see their NOTICE.md).

Tests read them from the package so that a clean clone has them without ../shared.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import spreports.simulator.models as _models

MODELS = Path(_models.__file__).resolve().parent


def load(name: str) -> dict[str, Any]:
    """One model file, parsed."""
    data: dict[str, Any] = json.loads((MODELS / name).read_text(encoding="utf-8"))
    return data
