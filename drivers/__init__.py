"""Line drivers: every kind of line (simulated, Asterisk AudioSocket, sound card), one interface."""
