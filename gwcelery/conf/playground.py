"""Preset: the playground services, where pipelines rehearse on replayed data."""
from . import *  # noqa: F401,F403

gracedb_url = 'https://gracedb-playground.ligo.org/api/'
"""Playground GraceDb."""

lvalert_url = 'xmpp://lvalert-playground.cgca.uwm.edu'
"""Playground LVAlert server."""
