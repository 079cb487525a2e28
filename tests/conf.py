"""Configuration for the test suite: the local preset plus test-only tasks.

The broker and result backend come from ``CELERY_BROKER_URL`` and
``CELERY_RESULT_BACKEND``, which the ``redis_url`` fixture sets.
"""
import os

from gwcelery.conf.local import *  # noqa: F401,F403

imports = ('tests.tasks', 'tests.dispatch_handlers', 'tests.fixtures.gcn',
           'tests.lvalert_handlers')

# No mock-event stream unless a test turns it on.
mock_events_enabled = False

# LVAlert tests publish on the test Redis (the embedded transport) unless
# they name an XMPP server of their own.
lvalert_url = os.environ.get(
    'GWCELERY_TEST_LVALERT_URL',
    os.environ.get('CELERY_BROKER_URL', 'redis://127.0.0.1:6379/0'))

# GCN tests pass the address of their own feed in the environment; other
# tests' listeners dial a closed port rather than a local deployment's feed.
gcn_remote_address = os.environ.get('GWCELERY_TEST_GCN_ADDRESS', '127.0.0.1:9')
gcn_max_reconnect_timeout = 2
# Any free port unless a test names one; inspect stats shows which.
voevent_broadcaster_address = os.environ.get(
    'GWCELERY_TEST_VOEVENT_ADDRESS', '127.0.0.1:0')
voevent_broadcaster_ack_timeout = 3.0

# The local GraceDb of the gracedb_server fixture, when a test starts one.
gracedb_url = os.environ.get('GWCELERY_TEST_GRACEDB_URL', gracedb_url)  # noqa: F405
gracedb_max_retries = 4
gracedb_retry_backoff = 0.2
gracedb_retry_backoff_max = 2.0

# Sky-map products small enough for tests to make in a second or two.
skymaps_allsky_dpi = 100
skymaps_volume_dpi = 20
skymaps_flatten_nside = 64

# The local GCN feed subscribes to a broadcaster only where a test says so,
# never to a local deployment's.
gcn_feed_upstream_address = os.environ.get('GWCELERY_TEST_FEED_UPSTREAM')
