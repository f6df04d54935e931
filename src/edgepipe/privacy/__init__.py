"""Privacy: what may leave the device, and what is kept on it."""
