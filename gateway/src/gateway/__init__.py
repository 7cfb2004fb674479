"""Espace gateway: the one public API in front of the services."""
