"""Helpers shared by the test suite: wallets, free ports, subprocess management."""
