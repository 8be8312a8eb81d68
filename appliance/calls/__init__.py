"""The call engine: one 20 ms clock, every line's frames in one batch, calls as state machines."""
