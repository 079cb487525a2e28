"""Configuration of the workers of benchmarks/lvalert.py: the local preset,
the LVAlert server from ``GWCELERY_BENCH_LVALERT_URL`` and the benchmark's
handler module."""
import os

from gwcelery.conf.local import *  # noqa: F401,F403

# No mock events among the measured ones.
mock_events_enabled = False

imports = ('benchmarks.lvalert_handlers',)
lvalert_url = os.environ['GWCELERY_BENCH_LVALERT_URL']
