"""Event contracts: what services say to each other over Kafka.

One module per producing service; every event is a pydantic model registered in `EVENT_TYPES`
with a committed JSON schema and example under `schemas/` (see tests/test_contracts.py).
"""
