"""GWCelery: low-latency alerts for gravitational-wave candidates.

The Celery application lives here as :data:`app`. Its configuration comes
from the module named by the environment variable ``CELERY_CONFIG_MODULE``
(default :mod:`gwcelery.conf.local`); see :doc:`/configuration`.
"""
import os

from celery import Celery

__all__ = ('app',)

#: Default configuration module when ``CELERY_CONFIG_MODULE`` is not set.
DEFAULT_CONFIG_MODULE = 'gwcelery.conf.local'

app = Celery('gwcelery', include=['gwcelery.tasks'])
app.config_from_object(
    os.environ.get('CELERY_CONFIG_MODULE') or DEFAULT_CONFIG_MODULE)
