"""Configuration of the local deployment that benchmarks/chaos.py runs: the
local preset on the run's own ports (from the environment), with no mock
events, the sky-map plots held, a Redis visibility timeout of the run's
choosing and a prompt reconciliation."""
import os

from gwcelery.conf.local import *  # noqa: F401,F403
from tests.fixtures.holding import Hold


def _env(name):
    return os.environ[f'GWCELERY_CHAOS_{name}']


broker_url = result_backend = lvalert_url = \
    f'redis://127.0.0.1:{_env("REDIS_PORT")}/0'
gracedb_url = f'http://127.0.0.1:{_env("GRACEDB_PORT")}/api/'
voevent_broadcaster_address = f'127.0.0.1:{_env("VOEVENT_PORT")}'
gcn_feed_address = f'127.0.0.1:{_env("FEED_PORT")}'
gcn_remote_address = (gcn_feed_address,)
gcn_feed_upstream_address = voevent_broadcaster_address
flower_port = int(_env('FLOWER_PORT'))

# Only the run's own uploads.
mock_events_enabled = False

# Fewer processes on two cores.
local_worker_concurrency = 4

#: A task whose worker was SIGKILLed comes back after the visibility
#: timeout; the run says which it used.
broker_transport_options = {
    **broker_transport_options,  # noqa: F405
    'visibility_timeout': float(_env('VISIBILITY_TIMEOUT'))}

# The safety net within the run's length; its warnings are counted.
superevent_reconcile_interval = 10.0
superevent_reconcile_min_age = 15.0

#: Plots are for people and take the cores for seconds to minutes; held,
#: they stay off the path to the notices that the run checks.
task_annotations = [Hold({'gwcelery.tasks.skymaps.annotate_fits',
                          'gwcelery.tasks.skymaps.plot_allsky',
                          'gwcelery.tasks.skymaps.plot_volume'}, 'chaos-held')]
