"""SMS through the box's GSM modem: the messages in the store (:mod:`.messages`) and the
engine's service that sends and receives them (:mod:`.service`)."""
