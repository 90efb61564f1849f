"""Speed and memory: aec's pack, unpack and start-up against the floors it cannot beat."""
