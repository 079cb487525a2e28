"""The ``gwcelery`` command and the configuration presets, as users run them."""
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT


def gwcelery(*args, env=None, timeout=120):
    """Run ``python -m gwcelery ARGS`` the way a user would."""
    return subprocess.run(
        [sys.executable, '-m', 'gwcelery', *args], capture_output=True,
        text=True, cwd=ROOT, env={**os.environ, **(env or {})},
        timeout=timeout)


def test_help_lists_celery_and_gwcelery_commands():
    result = gwcelery('--help')
    assert result.returncode == 0, result.stderr
    for command in ('worker', 'beat', 'inspect', 'call', 'purge', 'shell',
                    'flower', 'local'):
        assert f'  {command}' in result.stdout, command


def test_console_script_is_installed():
    script = os.path.join(os.path.dirname(sys.executable), 'gwcelery')
    result = subprocess.run([script, 'local', '--help'], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert 'start' in result.stdout and 'status' in result.stdout


PRESETS = {
    'gwcelery.conf.local': 'http://127.0.0.1:8001/api/',
    'gwcelery.conf.production': 'https://gracedb.ligo.org/api/',
    'gwcelery.conf.playground': 'https://gracedb-playground.ligo.org/api/',
    'gwcelery.conf.test': 'https://gracedb-test.ligo.org/api/',
}


@pytest.mark.parametrize('module,gracedb_url', PRESETS.items())
def test_preset_selected_by_environment(module, gracedb_url):
    code = ('from gwcelery import app; c = app.conf; '
            'print(c.gracedb_url, c.task_serializer, c.broker_url)')
    result = subprocess.run(
        [sys.executable, '-c', code], capture_output=True, text=True,
        env={**os.environ, 'CELERY_CONFIG_MODULE': module,
             'CELERY_BROKER_URL': 'redis://127.0.0.1:1/3'}, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        gracedb_url, 'json', 'redis://127.0.0.1:1/3']


def test_local_is_the_default_preset():
    env = {k: v for k, v in os.environ.items() if k != 'CELERY_CONFIG_MODULE'}
    result = subprocess.run(
        [sys.executable, '-c',
         'from gwcelery import app; print(app.conf.gracedb_url)'],
        capture_output=True, text=True, env=env, timeout=60)
    assert result.stdout.strip() == PRESETS['gwcelery.conf.local']


def test_user_module_overrides_a_preset(tmp_path):
    (tmp_path / 'mysite.py').write_text(
        'from gwcelery.conf.production import *\neternal_lock_ttl = 42.0\n')
    result = subprocess.run(
        [sys.executable, '-c', 'from gwcelery import app; c = app.conf; '
         'print(c.eternal_lock_ttl, c.gracedb_url)'],
        capture_output=True, text=True, timeout=60,
        env={**os.environ, 'CELERY_CONFIG_MODULE': 'mysite',
             'PYTHONPATH': f'{tmp_path}{os.pathsep}{os.environ["PYTHONPATH"]}'})
    assert result.stdout.split() == ['42.0', PRESETS['gwcelery.conf.production']]


def test_unknown_config_module_is_a_clear_error():
    result = subprocess.run(
        [sys.executable, '-m', 'gwcelery', 'inspect', 'ping'],
        capture_output=True, text=True, timeout=60,
        env={**os.environ, 'CELERY_CONFIG_MODULE': 'no.such.module'})
    assert result.returncode != 0
    assert 'no.such.module' in result.stderr


@pytest.mark.slow
def test_call_and_inspect_through_the_cli(redis_client, start_worker):
    worker = start_worker('cli', 'celery', '-c', '1')
    result = gwcelery('inspect', 'ping', '-d', worker.hostname)
    assert result.returncode == 0, result.stderr
    assert 'pong' in result.stdout
    result = gwcelery('call', 'tests.tasks.add', '--args', '[2, 3]')
    assert result.returncode == 0, result.stderr
    task_id = result.stdout.strip()
    from celery.result import AsyncResult

    from gwcelery import app
    assert AsyncResult(task_id, app=app).get(timeout=30) == 5
    result = gwcelery('inspect', 'registered', '-d', worker.hostname)
    assert 'tests.tasks.heartbeat' in result.stdout
