"""Teleconference (R14): rooms with a number, a PIN and a host PIN (hashed in the store),
up to 8 callers talking together on the engine's mixer, entry and exit tones, and the host's
mute and drop for the web. Callers reach a room from the IVR's ``conference`` node or by
dialling the conference number (:meth:`Conferences.route`)."""

from appliance.conference.rooms import MAX_PARTIES, RoomError, create_room
from appliance.conference.service import (
    DEFAULT_NUMBER,
    ConferenceError,
    Conferences,
    PartyView,
)

__all__ = ["DEFAULT_NUMBER", "MAX_PARTIES", "ConferenceError", "Conferences", "PartyView",
           "RoomError", "create_room"]
