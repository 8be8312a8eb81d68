"""Asterisk driver: the AudioSocket server that carries each call's audio, DTMF and hang-up."""
