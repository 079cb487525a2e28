"""Configuration of the workers of benchmarks/bayestar.py: the local preset
with the benchmark's own GraceDb and LVAlert server and the resolution of
the volume rendering (from the environment)."""
import os

from gwcelery.conf.local import *  # noqa: F401,F403

gracedb_url = os.environ['GWCELERY_BENCH_GRACEDB_URL']
lvalert_url = os.environ['GWCELERY_BENCH_LVALERT_URL']
skymaps_volume_dpi = int(os.environ.get('GWCELERY_BENCH_VOLUME_DPI',
                                        skymaps_volume_dpi))  # noqa: F405
