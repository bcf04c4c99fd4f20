"""The application lifecycle (申請の状態): its states and which of them are open."""

from __future__ import annotations

STATUSES = ("received", "in-review", "approved", "rejected", "paid", "returned", "withdrawn")
OPEN = ("received", "in-review", "returned")
WITHDRAWABLE = OPEN + ("approved",)  # until it is paid


RESUBMITTED = "resubmitted"  # the history note of a returned application signed again
