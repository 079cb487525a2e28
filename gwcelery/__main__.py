"""The ``gwcelery`` command: Celery's command line bound to the app.

``gwcelery worker``, ``beat``, ``inspect``, ``call``, ``purge``, ``shell``
and ``flower`` are Celery's and Flower's own commands with ``-A gwcelery``
implied; gwcelery adds its own subcommands (``local``, …) beside them.
"""
import importlib
import os
import sys

__all__ = ('main',)


def _subcommands():
    from .tools.alerts import alerts
    from .tools.condor import condor
    from .tools.debug import debug
    from .tools.gcn import gcn
    from .tools.local import local
    from .tools.localgracedb import localgracedb
    from .tools.lvalert import lvalert
    from .tools.nagios import nagios
    return [local, gcn, localgracedb, lvalert, alerts, condor, nagios, debug]


def main(argv=None):
    """Run the ``gwcelery`` command line."""
    from celery.bin.celery import celery

    from . import DEFAULT_CONFIG_MODULE, app

    # Celery imports the configuration lazily and would fail later with a
    # long traceback; check it here and say what is wrong.
    config = os.environ.get('CELERY_CONFIG_MODULE') or DEFAULT_CONFIG_MODULE
    try:
        importlib.import_module(config)
    except ImportError as e:
        sys.exit(f'gwcelery: cannot import the configuration module {config!r} '
                 f'named by CELERY_CONFIG_MODULE: {e}')

    argv = list(sys.argv[1:] if argv is None else argv)
    for command in _subcommands():
        celery.add_command(command)
    # Flower reads FLOWER_* variables; command-line options still win.
    os.environ.setdefault('FLOWER_ADDRESS', str(app.conf.flower_address))
    os.environ.setdefault('FLOWER_PORT', str(app.conf.flower_port))
    return celery.main(args=['-A', 'gwcelery', *argv], prog_name='gwcelery')


if __name__ == '__main__':
    main()
