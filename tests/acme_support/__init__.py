"""Helpers for the ACME tests: Debian's Pebble on loopback and a loopback DNS responder."""
