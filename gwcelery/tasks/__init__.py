"""Celery tasks, one module per subsystem.

Importing this package registers every task with :data:`gwcelery.app`;
workers and beat import it through the application's ``include`` list.
"""
from .. import redelivery  # noqa: F401  (a worker start-up step)
from . import core  # noqa: F401
from . import gracedb  # noqa: F401
from . import gcn, voevent  # noqa: F401
from . import lvalert  # noqa: F401
from . import superevents  # noqa: F401
from . import bayestar  # noqa: F401
from . import timeline, notices, orchestrator  # noqa: F401
from . import em_bright, p_astro, skymaps  # noqa: F401
from . import external_triggers, raven  # noqa: F401
from . import first2years  # noqa: F401
