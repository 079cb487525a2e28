"""Who holds an eternal task's lock, and whether that process is gone
(:func:`gwcelery.eternal.free_locks_of_dead_holders` frees only those),
judged on real processes."""
import os
import subprocess
import sys

from gwcelery import eternal
from gwcelery.util.waiting import wait_for


def _record_of(pid):
    return {'task_id': 'x', 'node': 'w@h', 'host': eternal._host_identity(),
            'pid': pid, 'start': eternal._process_state(pid)[1]}


def test_a_running_process_is_alive():
    record = eternal._holder_record('x', 'w@h')
    assert record['pid'] == os.getpid() and record['start'] is not None
    assert not eternal._holder_is_dead(record)


def test_a_process_that_exited_is_dead():
    child = subprocess.Popen([sys.executable, '-c', 'input()'],
                             stdin=subprocess.PIPE)
    record = _record_of(child.pid)
    assert not eternal._holder_is_dead(record)
    child.communicate(b'\n')
    assert eternal._holder_is_dead(record)


def test_a_process_dead_but_not_yet_reaped_is_dead():
    child = subprocess.Popen([sys.executable, '-c', 'input()'],
                             stdin=subprocess.PIPE)
    record = _record_of(child.pid)
    child.stdin.close()  # it exits; nobody waits for it yet
    wait_for(lambda: eternal._process_state(child.pid)[0] == 'Z',
             timeout=30, interval=0.05, what='the child to exit')
    try:
        assert eternal._holder_is_dead(record)
    finally:
        child.wait()


def test_a_pid_given_to_a_new_process_means_the_holder_is_gone():
    record = _record_of(os.getpid())
    record['start'] = str(int(record['start']) - 1)
    assert eternal._holder_is_dead(record)


def test_holders_of_other_hosts_are_never_judged():
    child = subprocess.Popen([sys.executable, '-c', 'pass'])
    child.wait()
    record = _record_of(child.pid)
    for host in ('another-host', record['host'] + 'x', ''):
        assert not eternal._holder_is_dead(dict(record, host=host))


def test_malformed_records_are_left_alone():
    for pid in (None, 0, -1, '123', 1.5):
        assert not eternal._holder_is_dead(dict(_record_of(1), pid=pid))


def test_the_host_identity_names_host_boot_and_pid_namespace():
    import socket
    name, boot, namespace = eternal._host_identity().split(' ')
    assert name == socket.gethostname()
    assert len(boot) == 36 and namespace.startswith('pid:[')


def _dead_pid():
    child = subprocess.Popen([sys.executable, '-c', 'pass'])
    child.wait()
    return child.pid


def test_freeing_takes_only_a_dead_holders_own_lock(redis_client):
    """On the real Redis: the lock of a dead holder goes, with its record;
    a lock that another copy took meanwhile, whose holder lives, or whose
    record is not JSON, stays."""
    import json

    from gwcelery import app
    from tests.tasks import heartbeat

    lock = heartbeat.generate_lock(heartbeat.name)
    holder = eternal.HOLDER_PREFIX + lock

    def give(task_id, record):
        redis_client.set(lock, task_id, px=60_000)
        redis_client.set(holder, json.dumps(record), px=60_000)

    give('live', dict(_record_of(os.getpid()), task_id='live'))
    assert heartbeat.name not in eternal.free_locks_of_dead_holders(app)
    assert redis_client.get(lock) == b'live'

    dead = dict(_record_of(_dead_pid()), task_id='dead')
    give('taken-over', dead)  # the record is stale: another copy holds it
    assert heartbeat.name not in eternal.free_locks_of_dead_holders(app)
    assert redis_client.get(lock) == b'taken-over'

    redis_client.set(holder, b'{"task_id": "dead", "pid": ')  # cut short
    assert heartbeat.name not in eternal.free_locks_of_dead_holders(app)
    assert redis_client.get(lock) == b'taken-over'

    give('dead', dead)
    assert heartbeat.name in eternal.free_locks_of_dead_holders(app)
    assert redis_client.get(lock) is None and redis_client.get(holder) is None


def test_without_proc_only_the_pid_decides(monkeypatch):
    """Where there is no /proc (macOS), a live pid is never taken for a
    dead holder, and a gone one still is."""
    record = _record_of(os.getpid())
    gone = _record_of(_dead_pid())
    real_exists = os.path.exists
    monkeypatch.setattr(eternal.os.path, 'exists', lambda path: False if str(
        path).startswith('/proc') else real_exists(path))
    assert eternal._process_state(os.getpid()) == (None, None)
    assert not eternal._holder_is_dead(dict(record, start=None))
    assert not eternal._holder_is_dead(record)
    assert eternal._holder_is_dead(gone)
