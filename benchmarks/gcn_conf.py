"""Configuration of the workers of benchmarks/gcn.py: the local preset, the
benchmark's recording handler, the GCN feed it starts (from
``GWCELERY_BENCH_GCN_ADDRESS``) and a VOEvent broadcaster on any free
port."""
import os

from gwcelery.conf.local import *  # noqa: F401,F403

# No mock events among the measured ones.
mock_events_enabled = False

imports = ('benchmarks.gcn_handlers',)
# Without an address (the voevent worker), a closed port rather than a
# local deployment's feed.
gcn_remote_address = (os.environ.get('GWCELERY_BENCH_GCN_ADDRESS',
                                     '127.0.0.1:9'),)
gcn_max_reconnect_timeout = 2
voevent_broadcaster_address = '127.0.0.1:0'
# The feed serves only what the benchmark queues: no upstream broadcaster
# (the local preset's would be a local deployment's).
gcn_feed_upstream_address = None
