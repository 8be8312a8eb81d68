"""Line drivers: every kind of line (simulated, Asterisk AudioSocket, sound card) behind one interface."""
