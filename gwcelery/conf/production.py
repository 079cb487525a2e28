"""Preset: the production LIGO/Virgo/KAGRA services."""
from . import *  # noqa: F401,F403

gracedb_url = 'https://gracedb.ligo.org/api/'
"""Production GraceDb."""

lvalert_url = 'xmpp://lvalert.cgca.uwm.edu'
"""Production LVAlert server."""
