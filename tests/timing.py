"""Time budgets of the speed tests, widened while a tracer runs: coverage traces every line, about 2-3 times slower."""

import sys

TRACED_SLOWDOWN = 3


def budget(seconds: float) -> float:
    """The seconds a speed test allows: its figure, or three times it under coverage or a debugger."""
    return seconds * TRACED_SLOWDOWN if sys.gettrace() is not None else seconds
