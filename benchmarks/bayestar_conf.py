"""Configuration of the workers of benchmarks/bayestar.py: the local preset
with the benchmark's own GraceDb and LVAlert server (from the
environment)."""
import os

from gwcelery.conf.local import *  # noqa: F401,F403

gracedb_url = os.environ['GWCELERY_BENCH_GRACEDB_URL']
lvalert_url = os.environ['GWCELERY_BENCH_LVALERT_URL']
