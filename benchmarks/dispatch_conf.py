"""Configuration of the gwcelery worker of benchmarks/dispatch.py: the
local preset and the benchmark's task."""
from gwcelery.conf.local import *  # noqa: F401,F403

# No mock events among the measured ones.
mock_events_enabled = False

imports = ('benchmarks.dispatch_tasks',)
