"""Configuration of the workers of benchmarks/external_triggers.py: the
local preset, with the benchmark's own GraceDb, LVAlert server and GCN
feed (from the environment)."""
import os

from gwcelery.conf.local import *  # noqa: F401,F403

gracedb_url = os.environ['GWCELERY_BENCH_GRACEDB_URL']
lvalert_url = os.environ['GWCELERY_BENCH_LVALERT_URL']
gcn_remote_address = os.environ['GWCELERY_BENCH_GCN_ADDRESS']
gcn_feed_address = gcn_remote_address
# The feed serves only what the benchmark queues: no upstream broadcaster
# (the local preset's would be a local deployment's).
gcn_feed_upstream_address = None
