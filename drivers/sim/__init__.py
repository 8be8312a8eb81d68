"""The simulated exchange: lines that ring, answer and carry audio, and bots that call."""

from drivers.sim.bot import CallerBot
from drivers.sim.exchange import SimExchange, SimLine

__all__ = ["CallerBot", "SimExchange", "SimLine"]
