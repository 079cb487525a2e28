"""Preset: the production LIGO/Virgo/KAGRA services."""
from . import *  # noqa: F401,F403

gracedb_url = 'https://gracedb.ligo.org/api/'
"""Production GraceDb."""

lvalert_url = 'xmpp://lvalert.cgca.uwm.edu'
"""Production LVAlert server."""

voevent_broadcaster_address = '0.0.0.0:5341'
"""GCN connects from outside, so listen on every interface."""

voevent_broadcaster_whitelist = ('capella2.gsfc.nasa.gov',)
"""GCN's VOEvent receiver."""

voevent_broadcaster_expected_subscribers = voevent_broadcaster_whitelist
"""``gwcelery nagios`` is critical while GCN is not subscribed."""
