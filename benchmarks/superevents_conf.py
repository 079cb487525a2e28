"""Configuration of the workers of benchmarks/superevents.py: the local
preset, with the benchmark's own GraceDb and LVAlert server (from the
environment) and its baseline handler; with
``GWCELERY_BENCH_HOLD_ORCHESTRATOR`` set, the orchestrator's and RAVEN's
handlers held on a queue that no worker reads."""
import os

from gwcelery.conf.local import *  # noqa: F401,F403

# No mock events among the measured ones.
mock_events_enabled = False

imports = ('benchmarks.superevents_handlers',)
gracedb_url = os.environ['GWCELERY_BENCH_GRACEDB_URL']
lvalert_url = os.environ['GWCELERY_BENCH_LVALERT_URL']

if os.environ.get('GWCELERY_BENCH_HOLD_ORCHESTRATOR'):
    from tests.fixtures.holding import Hold
    task_annotations = [Hold({
        'gwcelery.tasks.orchestrator.handle_cbc_event',
        'gwcelery.tasks.orchestrator.handle_superevent',
        'gwcelery.tasks.orchestrator.handle_event_products',
        'gwcelery.tasks.raven.handle'}, 'bench-held')]
