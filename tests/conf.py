"""Configuration for the test suite: the local preset plus test-only tasks.

The broker and result backend come from ``CELERY_BROKER_URL`` and
``CELERY_RESULT_BACKEND``, which the ``redis_url`` fixture sets.
"""
from gwcelery.conf.local import *  # noqa: F401,F403

imports = ('tests.tasks', 'tests.dispatch_handlers')
