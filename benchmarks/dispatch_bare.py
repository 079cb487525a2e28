"""The bare Celery application of benchmarks/dispatch.py: the baseline.

Broker and result backend come from ``CELERY_BROKER_URL`` and
``CELERY_RESULT_BACKEND``, as for gwcelery's workers.
"""
from celery import Celery

app = Celery('bare')
app.conf.update(task_serializer='json', result_serializer='json',
                accept_content=['json'])


@app.task(name='bench.dispatch.bare.add')
def add(x, y):
    """The task measured: as little work as there can be."""
    return x + y
