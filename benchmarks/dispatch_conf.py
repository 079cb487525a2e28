"""Configuration of the gwcelery worker of benchmarks/dispatch.py: the
local preset and the benchmark's task."""
from gwcelery.conf.local import *  # noqa: F401,F403

imports = ('benchmarks.dispatch_tasks',)
