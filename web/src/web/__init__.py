"""Espace web: the member space, server-rendered, in front of the gateway API."""

__version__ = "0.1.0"
