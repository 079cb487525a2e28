"""Configuration of the workers of benchmarks/alert_path.py: the local
preset (its short orchestrator timeout included) with the benchmark's own
GraceDb, LVAlert server, broadcaster and GCN feed (from the environment),
and the sky-map plots held on a queue that no worker consumes."""
import os

from gwcelery.conf.local import *  # noqa: F401,F403
from tests.fixtures.holding import Hold

# No mock events among the measured ones.
mock_events_enabled = False

gracedb_url = os.environ['GWCELERY_BENCH_GRACEDB_URL']
lvalert_url = os.environ['GWCELERY_BENCH_LVALERT_URL']
voevent_broadcaster_address = os.environ['GWCELERY_BENCH_VOEVENT_ADDRESS']
gcn_remote_address = (os.environ['GWCELERY_BENCH_FEED_ADDRESS'],)
gcn_feed_upstream_address = voevent_broadcaster_address

#: Plots are for people and take the cores for seconds to minutes: off the
#: path to the notice, they would still slow it (and the next event's
#: localization, behind the volume rendering on the openmp queue).
HELD = frozenset({'gwcelery.tasks.skymaps.annotate_fits',
                  'gwcelery.tasks.skymaps.plot_allsky',
                  'gwcelery.tasks.skymaps.plot_volume'})

task_annotations = [Hold(HELD, 'bench-held')]
