"""Packages that extend edgepipe through its entry points, installed for a test only."""
