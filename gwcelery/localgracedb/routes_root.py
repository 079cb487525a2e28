"""The service root document, ``GET /api/``.

The ligo-gracedb client reads it once and builds every address from its
``links`` and ``templates``; it also validates names against its lists.
"""
from flask import Blueprint, jsonify

from . import vocabulary
from .routes_common import api_root

__all__ = ('blueprint', 'service_document')

blueprint = Blueprint('root', __name__)

#: Version reported as ``server-version``.
SERVER_VERSION = 'gwcelery-localgracedb-1'

_E = 'events/{graceid}'
_S = 'superevents/{superevent_id}/'
_TEMPLATES = {
    'event-detail-template': _E,
    'event-log-template': _E + '/log/',
    'event-log-detail-template': _E + '/log/{N}',
    'event-label-template': _E + '/labels/{label}',
    'files-template': _E + '/files/{filename}',
    'taglist-template': _E + '/log/{N}/tag/',
    'tag-template': _E + '/log/{N}/tag/{tag_name}',
    'voevent-list-template': _E + '/voevent/',
    'voevent-detail-template': _E + '/voevent/{N}',
    'emobservation-list-template': _E + '/emobservation/',
    'emobservation-detail-template': _E + '/emobservation/{N}',
    'update-grbevent-template': _E + '/grbevent/',
    'superevent-detail-template': _S,
    'superevent-event-list-template': _S + 'events/',
    'superevent-event-detail-template': _S + 'events/{graceid}/',
    'superevent-label-list-template': _S + 'labels/',
    'superevent-label-detail-template': _S + 'labels/{label_name}/',
    'superevent-log-list-template': _S + 'logs/',
    'superevent-log-detail-template': _S + 'logs/{N}/',
    'superevent-log-tag-list-template': _S + 'logs/{N}/tags/',
    'superevent-log-tag-detail-template': _S + 'logs/{N}/tags/{tag_name}/',
    'superevent-file-list-template': _S + 'files/',
    'superevent-file-detail-template': _S + 'files/{file_name}',
    'superevent-voevent-list-template': _S + 'voevents/',
    'superevent-voevent-detail-template': _S + 'voevents/{N}/',
    'superevent-confirm-as-gw-template': _S + 'confirm-as-gw/',
    'superevent-emobservation-list-template': _S + 'emobservations/',
    'superevent-emobservation-detail-template': _S + 'emobservations/{N}/',
}


def service_document(api):
    """The root document for the API at address ``api``."""
    return {
        'links': {
            'self': api,
            'events': f'{api}events/',
            'superevents': f'{api}superevents/',
        },
        'templates': {key: api + value for key, value in _TEMPLATES.items()},
        'groups': vocabulary.GROUPS,
        'pipelines': vocabulary.PIPELINES,
        'searches': vocabulary.SEARCHES,
        'labels': vocabulary.LABELS,
        'instruments': vocabulary.INSTRUMENTS,
        'superevent-categories': vocabulary.CATEGORIES,
        'voevent-types': vocabulary.VOEVENT_TYPES,
        'em-groups': [],
        'signoff-types': {},
        'signoff-statuses': {},
        'API_VERSIONS': ['default'],
        'api-versions': ['default'],
        'server-version': SERVER_VERSION,
    }


@blueprint.get('/api/')
def root():
    return jsonify(service_document(api_root()))
