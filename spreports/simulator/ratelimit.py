"""Amazon's usage plans, enforced as one token bucket per (seller, operation) on the simulated clock."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from spreports.simulator.clock import SimClock


@dataclass(frozen=True)
class UsagePlan:
    """Requests per second refilled and the bucket size, as the models' operation descriptions state."""

    rate: float
    burst: int


# From the "Usage Plan" table in each operation's description (reports_2021-06-30.json, notifications.json,
# tokens_2021-03-01.json).
USAGE_PLANS: dict[str, UsagePlan] = {
    "getReports": UsagePlan(0.0222, 10),
    "createReport": UsagePlan(0.0167, 15),
    "cancelReport": UsagePlan(0.0222, 10),
    "getReport": UsagePlan(2.0, 15),
    "getReportSchedules": UsagePlan(0.0222, 10),
    "createReportSchedule": UsagePlan(0.0222, 10),
    "cancelReportSchedule": UsagePlan(0.0222, 10),
    "getReportSchedule": UsagePlan(0.0222, 10),
    "getReportDocument": UsagePlan(0.0167, 15),
    "createRestrictedDataToken": UsagePlan(1.0, 10),
    **{
        op: UsagePlan(1.0, 5)
        for op in (
            "getSubscriptions", "getSubscription", "createSubscription", "getSubscriptionById",
            "deleteSubscriptionById", "getDestinations", "createDestination", "getDestination",
            "deleteDestination", "sendTestNotification",
        )
    },
}  # fmt: skip
# Amazon's sandbox: 5 requests per second, burst 15, for every operation.
SANDBOX_PLAN = UsagePlan(5.0, 15)


class RateLimiter:
    """Token buckets keyed by (seller or application, operation), refilled on simulated time."""

    def __init__(self, clock: SimClock, *, enabled: bool = True, sandbox: bool = False) -> None:
        self.clock = clock
        self.enabled = enabled
        self.sandbox = sandbox
        self._buckets: dict[tuple[str, str], tuple[float, float]] = {}  # key -> (tokens, at seconds)
        self._lock = threading.Lock()

    def plan(self, operation: str) -> UsagePlan:
        """The usage plan of an operation."""
        return SANDBOX_PLAN if self.sandbox else USAGE_PLANS[operation]

    def header(self, operation: str) -> str:
        """``x-amzn-RateLimit-Limit``: the rate in requests per real second (the model rate times the speed)."""
        return f"{self.plan(operation).rate * self.clock.speed:g}"

    def allow(self, caller: str, operation: str) -> bool:
        """Take one token for ``caller`` calling ``operation``; False when the bucket is empty."""
        if not self.enabled:
            return True
        plan = self.plan(operation)
        now = self.clock.seconds()
        with self._lock:
            tokens, at = self._buckets.get((caller, operation), (float(plan.burst), now))
            tokens = min(float(plan.burst), tokens + (now - at) * plan.rate)
            allowed = tokens >= 1.0
            self._buckets[(caller, operation)] = (tokens - 1.0 if allowed else tokens, now)
            return allowed
