"""Preset: the test services, for trying gwcelery changes against real hosts."""
from . import *  # noqa: F401,F403

gracedb_url = 'https://gracedb-test.ligo.org/api/'
"""Test GraceDb."""

lvalert_url = 'xmpp://lvalert-test.cgca.uwm.edu'
"""Test LVAlert server."""
