"""Configuration of the workers of benchmarks/superevents.py: the local
preset, with the benchmark's own GraceDb and LVAlert server (from the
environment) and its baseline handler."""
import os

from gwcelery.conf.local import *  # noqa: F401,F403

# No mock events among the measured ones.
mock_events_enabled = False

imports = ('benchmarks.superevents_handlers',)
gracedb_url = os.environ['GWCELERY_BENCH_GRACEDB_URL']
lvalert_url = os.environ['GWCELERY_BENCH_LVALERT_URL']
