"""The box itself: its telephone ports and the configuration the firmware writes for
them (DAHDI, chan_dahdi), kept as rows in the store and rendered as text."""
