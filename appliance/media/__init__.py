"""Media ground floor: 20 ms frames, codecs, tones, detectors, players and recorders.

Nothing here imports any other part of the project; everything above builds on it.
"""
