"""The built-in demo: a small call flow and simulated callers for ``make run``."""
