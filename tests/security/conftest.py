"""Fixtures of the security suite (defined with the attack probe in ``_attack``)."""

from ._attack import redis_server, server, spawn  # noqa: F401
