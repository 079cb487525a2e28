"""Every gwcelery task goes to the queue the design gives it.

The table below is the design's routing (DESIGN.md §2). A task that is not
in it belongs on the default ``celery`` queue; a new task meant for another
queue must be added here, so that moving a task by accident fails this test.
"""
import pytest

import gwcelery.tasks  # noqa: F401  (registers every task)
from gwcelery import app

EXPECTED = {
    'gwcelery.tasks.superevents.handle': 'superevent',
    'gwcelery.tasks.superevents.drain': 'superevent',
    'gwcelery.tasks.external_triggers.handle_gcn': 'exttrig',
    'gwcelery.tasks.raven.handle': 'exttrig',
    'gwcelery.tasks.bayestar.localize': 'openmp',
    'gwcelery.tasks.orchestrator.localize_event': 'openmp',
    'gwcelery.tasks.skymaps.plot_volume': 'openmp',
    'gwcelery.tasks.voevent.send': 'voevent',
    'gwcelery.tasks.lvalert.listen': 'celery',
    'gwcelery.tasks.gcn.listen': 'celery',
}

QUEUES = {'celery', 'openmp', 'superevent', 'exttrig', 'voevent'}


def routed_queue(name):
    """The queue Celery would send task ``name`` to."""
    options = app.tasks[name]._get_exec_options()
    queue = app.amqp.router.route(dict(options), name)['queue']
    return getattr(queue, 'name', queue)


def gwcelery_tasks():
    app.loader.import_default_modules()
    return sorted(name for name in app.tasks if name.startswith('gwcelery.'))


def test_routing_table(capsys):
    table = {name: routed_queue(name) for name in gwcelery_tasks()}
    with capsys.disabled():
        print('\nTask routing:')
        for name, queue in table.items():
            print(f'  {queue:<11} {name}')
    wrong = {name: queue for name, queue in table.items()
             if queue != EXPECTED.get(name, 'celery')}
    assert not wrong, f'tasks on the wrong queue: {wrong}'
    assert set(table.values()) <= QUEUES


def test_default_queue_is_celery():
    assert app.conf.task_default_queue == 'celery'


@pytest.mark.parametrize('queue', sorted(QUEUES))
def test_a_task_declares_its_queue_on_its_decorator(queue):
    @app.task(queue=queue, shared=False, name=f'tests.queue_probe.{queue}')
    def probe():
        pass

    assert routed_queue(probe.name) == queue
