"""An offline Amazon SP-API: LWA, Reports 2021-06-30, Tokens, Notifications v1 -> SQS, with faults.

Written from Amazon's models alone; it shares no code with :mod:`spreports.spapi`, so that a misread
field cannot pass both sides.

    from spreports.simulator import SimulatorConfig, start_simulator
    sim = start_simulator(SimulatorConfig(rate_limits=False))
    sim.env()            # SPREPORTS_* variables pointing the product at it
    doc_id = sim.add_document(DocumentSpec(size=10 * 2**20, charset="Cp1252"))
    sim.set_faults(throttle=3)
    sim.stop()
"""

from __future__ import annotations

from spreports.simulator.config import Faults, Outcomes, SellerAccount, SimulatorConfig, config_from_settings
from spreports.simulator.content import DocumentSpec
from spreports.simulator.http import RequestRecord
from spreports.simulator.notify import SentNotification
from spreports.simulator.server import Simulator, start_simulator

__all__ = [
    "DocumentSpec",
    "Faults",
    "Outcomes",
    "RequestRecord",
    "SellerAccount",
    "SentNotification",
    "Simulator",
    "SimulatorConfig",
    "config_from_settings",
    "start_simulator",
]
