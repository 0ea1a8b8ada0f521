"""The embedded lab: in-process asyncssh hosts on loopback with their own roots."""
