"""Preset: everything on this machine (the default).

Redis on the loopback interface, and the local stand-ins of GraceDb, the
LVAlert server and the GCN feed that the local deployment
(``gwcelery local start``) runs beside the workers.
"""
from . import *  # noqa: F401,F403

gracedb_url = 'http://127.0.0.1:8001/api/'
"""The local GraceDb of the local deployment."""

lvalert_url = broker_url  # noqa: F405
"""The embedded LVAlert transport on the deployment's own Redis (the
broker)."""

gcn_remote_address = ('127.0.0.1:8099',)
"""The local GCN feed (``gwcelery gcn feed``) of the local deployment."""

gcn_max_reconnect_timeout = 8
"""The local feed restarts in seconds; there is no server to spare."""

mock_events_enabled = True
"""Mock events from the first2years bank, so that the local deployment
produces alerts by itself (:mod:`gwcelery.tasks.first2years`)."""

mock_events_period = 120.0
"""A mock event every two minutes."""

mock_events_advocate_delay = 180.0
"""The mock advocate decides three minutes after the upload."""

mock_events_grb_probability = 0.25
"""One mock event in four comes with a gamma-ray burst."""

gcn_feed_upstream_address = voevent_broadcaster_address  # noqa: F405
"""The feed subscribes to our own broadcaster, as GCN does, and serves our
notices back to the listener: the whole round trip on one machine."""

orchestrator_timeout = 2.0
"""Short, since a local upload is the only one of its candidate and no
other pipeline's upload is to be waited for."""

superevent_clean_up_timeout = 60.0
"""A second preliminary notice a minute after the first, if the preferred
event changed."""

voevent_broadcaster_expected_subscribers = ('127.0.0.1',)
"""The local GCN feed subscribes to the broadcaster from this machine; the
health check reports its absence."""
