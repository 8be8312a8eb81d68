"""A GSM modem on a serial port (pyserial, AT commands): the box's SMS line."""
