"""Events: ``/api/events/…``.

Create (``POST`` multipart with ``group``, ``pipeline``, ``search``,
``offline``, ``labels``, ``eventFile``), replace (``PUT``), get, search;
and each event's logs, tags, labels and files.
"""
from flask import Blueprint, jsonify, request
from sqlalchemy import select

from . import ids, routes_common as common, serialize, vocabulary
from .alerts import event_node
from .eventfiles import read_event_file
from .models import Event
from .paging import page
from .query import QueryError, event_conditions

__all__ = ('blueprint',)

blueprint = Blueprint('events', __name__, url_prefix='/api/events')
_resolve = common.event_target

_SORTABLE = {'gpstime': Event.gpstime, 'far': Event.far,
             'created': Event.id, 'id': Event.id, 'graceid': Event.id}


def _read_upload():
    upload = request.files.get('eventFile')
    if upload is None:
        common.bad_request('eventFile is required')
    filename = common.parse_filename(upload.filename or 'event.data')
    content = upload.read()
    if not content:
        common.bad_request('eventFile is empty')
    try:
        parsed = read_event_file(content)
    except ValueError as e:
        common.bad_request(f'cannot read {filename}: {e}')
    return filename, content, parsed


def _choice(value, names, what, required=True):
    if not value:
        if required:
            common.bad_request(f'{what} is required')
        return None
    if value not in names:
        common.bad_request(f'unknown {what} {value!r}; choose from '
                           f'{", ".join(names)}')
    return value


@blueprint.post('/', strict_slashes=False)
def create():
    api = common.api_root()
    form = request.form
    group = _choice(form.get('group'), vocabulary.GROUPS, 'group')
    pipeline = _choice(form.get('pipeline'), vocabulary.PIPELINES,
                       'pipeline')
    search = _choice(form.get('search'), vocabulary.SEARCHES, 'search',
                     required=False)
    offline = common.parse_bool(form.get('offline', 'False'), 'offline')
    labels = form.getlist('labels')
    for label in labels:
        common.check_label(label)
    filename, content, parsed = _read_upload()
    if group == 'External' and 'GRB' not in parsed['extra_attributes']:
        common.bad_request('an External event needs a GCN VOEvent file')
    submitter = common.state().submitter

    def tx(session):
        event = Event(group=group, pipeline=pipeline, search=search,
                      offline=offline, submitter=submitter, **parsed)
        session.add(event)
        session.flush()
        event.graceid = f'{ids.event_prefix(group, search)}{event.id}'
        common.add_log(session, event.graceid, 'Original Data', filename,
                       content)
        for label in labels:
            common.add_label(session, event.graceid, label)
        session.flush()
        data = serialize.event_json(session, event, api)
        return data, [(event_node(group, pipeline), event.graceid, 'new',
                       data, data)]

    data, alerts = common.state().db.write(tx)
    common.state().alerts.send_all(alerts)
    return jsonify(data), 201


@blueprint.get('/', strict_slashes=False)
def search():
    api = common.api_root()
    known = {'groups': vocabulary.GROUPS, 'pipelines': vocabulary.PIPELINES,
             'searches': vocabulary.SEARCHES}
    try:
        condition = event_conditions(request.args.get('query', ''), known)
    except QueryError as e:
        common.bad_request(f'bad query: {e}')
    with common.state().db.read() as session:
        rows, links, total, start = page(
            session, select(Event).where(condition), _SORTABLE, Event.id,
            f'{api}events/')
        labels = serialize.labels_of(session, [e.graceid for e in rows])
        events = [serialize.event_json(session, e, api, labels[e.graceid])
                  for e in rows]
    return jsonify({'events': events, 'numRows': total, 'start': start,
                    'links': links})


@blueprint.get('/<graceid>', strict_slashes=False)
def get(graceid):
    api = common.api_root()
    with common.state().db.read() as session:
        target = _resolve(session, graceid)
        return jsonify(serialize.event_json(session, target.record, api))


@blueprint.put('/<graceid>', strict_slashes=False)
def replace(graceid):
    api = common.api_root()
    filename, content, parsed = _read_upload()

    def tx(session):
        target = _resolve(session, graceid)
        event = target.record
        # An External event stays one, and a CBC event cannot become one.
        if ('GRB' in (event.extra_attributes or {})) != (
                'GRB' in parsed['extra_attributes']):
            common.bad_request('the new file is of another kind than the '
                               "event's original file")
        for key, value in parsed.items():
            setattr(event, key, value)
        log = common.add_log(session, graceid, 'Event data replaced',
                             filename, content)
        session.flush()
        data = serialize.event_json(session, event, api)
        log_data = serialize.log_json(log, target.base(api), False)
        return data, [target.alert(session, api, 'update', data),
                      target.alert(session, api, 'log', log_data)]

    data, alerts = common.state().db.write(tx)
    common.state().alerts.send_all(alerts)
    return jsonify(data), 202


@blueprint.get('/<graceid>/log/')
def logs(graceid):
    return common.list_logs(_resolve, graceid)


@blueprint.post('/<graceid>/log/')
def write_log(graceid):
    return common.create_log(_resolve, graceid)


@blueprint.get('/<graceid>/log/<int:n>', strict_slashes=False)
def log(graceid, n):
    return common.get_log(_resolve, graceid, n)


@blueprint.get('/<graceid>/log/<int:n>/tag/')
def tags(graceid, n):
    return common.list_tags(_resolve, graceid, n)


@blueprint.route('/<graceid>/log/<int:n>/tag/<name>', methods=['PUT', 'POST'],
                 strict_slashes=False)
def add_tag(graceid, n, name):
    return common.create_tag(_resolve, graceid, n, name)


@blueprint.delete('/<graceid>/log/<int:n>/tag/<name>', strict_slashes=False)
def remove_tag(graceid, n, name):
    return common.delete_tag(_resolve, graceid, n, name)


@blueprint.get('/<graceid>/labels/')
def labels(graceid):
    return common.list_labels(_resolve, graceid)


@blueprint.get('/<graceid>/labels/<name>', strict_slashes=False)
def label(graceid, name):
    return common.get_label(_resolve, graceid, name)


@blueprint.put('/<graceid>/labels/<name>', strict_slashes=False)
def add_label(graceid, name):
    return common.create_label(_resolve, graceid, name)


@blueprint.delete('/<graceid>/labels/<name>', strict_slashes=False)
def remove_label(graceid, name):
    return common.delete_label(_resolve, graceid, name)


@blueprint.get('/<graceid>/files/')
def files(graceid):
    return common.list_files(_resolve, graceid)


@blueprint.get('/<graceid>/files/<path:filename>')
def download(graceid, filename):
    return common.download_file(_resolve, graceid, filename)

