"""What events and superevents share: logs, tags, labels and files.

The resource modules (:mod:`.routes_events`, :mod:`.routes_superevents`)
map their URLs onto the functions here, through a :class:`Target` that
says which object the request is about and where its alerts go.
"""
import dataclasses
import math
import mimetypes
import re

from flask import Response, abort, current_app, jsonify, request
from sqlalchemy import func, select

from . import serialize, vocabulary
from .models import Event, File, Label, Log, Superevent, Tag
from .alerts import event_node, superevent_node
from .paging import whole_list

__all__ = ('Target', 'state', 'api_root', 'bad_request', 'fields',
           'parse_bool', 'parse_float', 'parse_filename', 'add_file',
           'add_log', 'add_label', 'event_target', 'superevent_target')

_FILENAME = re.compile(r'^[^/\\\x00-\x1f,]{1,255}$')


def state():
    """The server's :class:`~.app.ServerState`."""
    return current_app.extensions['localgracedb']


def api_root():
    """Address of the API root: the configured public one, else the one
    the client reached."""
    return state().public_url or request.url_root.rstrip('/') + '/api/'


def site_root():
    """Address of the web pages (the API root without ``api/``)."""
    return api_root()[:-len('api/')]


def bad_request(reason):
    """Abort with 400 and a reason."""
    abort(400, description=reason)


def fields():
    """The request's fields: form (urlencoded or multipart) or JSON."""
    if request.is_json:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            bad_request('the JSON body must be an object')
        return _JSONFields(body)
    return request.form


class _JSONFields(dict):
    def getlist(self, key):
        value = self.get(key)
        if value is None:
            return []
        return list(value) if isinstance(value, (list, tuple)) else [value]


def parse_bool(value, name):
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ('true', '1', 'yes'):
        return True
    if text in ('false', '0', 'no', ''):
        return False
    bad_request(f'{name} must be true or false, not {value!r}')


def parse_float(value, name, required=False, low=None, high=None):
    if value is None or value == '':
        if required:
            bad_request(f'{name} is required')
        return None
    try:
        result = float(value)
    except (TypeError, ValueError):
        bad_request(f'{name} must be a number, not {value!r}')
    if not math.isfinite(result):
        bad_request(f'{name} must be finite, not {value!r}')
    if (low is not None and result < low) or (
            high is not None and result > high):
        bad_request(f'{name} must be between {low} and {high}, not {value}')
    return result


def parse_filename(name):
    """A safe stored file name from an uploaded file's name."""
    name = (name or '').replace('\\', '/').rsplit('/', 1)[-1]
    if not _FILENAME.match(name) or name in ('.', '..'):
        bad_request(f'bad file name {name!r}: 1 to 255 characters without '
                    'slashes, commas or control characters')
    return name


@dataclasses.dataclass
class Target:
    """An event or superevent that logs, labels and files belong to."""

    object_id: str
    """Storage key (graceid, or the superevent's original id)."""
    public_id: str
    """Id in addresses and messages (the GW id of a confirmed superevent)."""
    is_superevent: bool
    node: str
    """LVAlert node."""
    record: object
    """The :class:`~.models.Event` or :class:`~.models.Superevent`."""

    def base(self, api):
        return serialize.object_base(api, self.public_id, self.is_superevent)

    def json(self, session, api):
        if self.is_superevent:
            return serialize.superevent_json(session, self.record, api)
        return serialize.event_json(session, self.record, api)

    def alert(self, session, api, alert_type, data):
        """An alert tuple with the object's current JSON."""
        return (self.node, self.public_id, alert_type, data,
                self.json(session, api))


def event_target(session, graceid):
    event = session.scalar(select(Event).where(Event.graceid == graceid))
    if event is None:
        abort(404, description=f'No event {graceid}')
    return Target(event.graceid, event.graceid, False,
                  event_node(event.group, event.pipeline), event)


def superevent_target(session, superevent_id):
    superevent = session.scalar(select(Superevent).where(
        (Superevent.superevent_id == superevent_id)
        | (Superevent.gw_id == superevent_id)))
    if superevent is None:
        abort(404, description=f'No superevent {superevent_id}')
    return Target(superevent.superevent_id,
                  serialize.superevent_display_id(superevent), True,
                  superevent_node(superevent.category), superevent)


def add_file(session, object_id, name, content):
    """Store a new version of a file; return its version (0, 1, …)."""
    latest = session.scalar(select(func.max(File.version)).where(
        File.object_id == object_id, File.name == name))
    version = 0 if latest is None else latest + 1
    session.add(File(object_id=object_id, name=name, version=version,
                     size=len(content), content=content))
    return version


def _next_n(session, model, object_id):
    latest = session.scalar(select(func.max(model.N)).where(
        model.object_id == object_id))
    return (latest or 0) + 1


def add_log(session, object_id, comment, filename='', content=None,
            tags=(), displays=()):
    """Add a log entry, with a file if ``content`` is given."""
    version = None
    if content is not None:
        version = add_file(session, object_id, filename, content)
    log = Log(object_id=object_id, N=_next_n(session, Log, object_id),
              comment=comment, filename=filename if content is not None
              else '', file_version=version, issuer=state().submitter)
    for i, name in enumerate(dict.fromkeys(tags)):
        log.tags.append(Tag(name=name, display=(
            displays[i] if i < len(displays) else name)))
    session.add(log)
    session.flush()
    return log


def check_label(name):
    if name not in vocabulary.LABELS:
        bad_request(f'unknown label {name!r}')


def add_label(session, object_id, name):
    """Apply a label; ``None`` if the object already has it."""
    check_label(name)
    if session.scalar(select(Label).where(Label.object_id == object_id,
                                          Label.name == name)):
        return None
    label = Label(object_id=object_id, name=name,
                  creator=state().submitter)
    session.add(label)
    session.flush()
    return label


# -- shared request handlers --------------------------------------------------

def _db():
    return state().db


def _publish(alerts):
    state().alerts.send_all(alerts)


def list_labels(resolve, object_key):
    api = api_root()
    with _db().read() as session:
        target = resolve(session, object_key)
        labels = session.scalars(select(Label).where(
            Label.object_id == target.object_id).order_by(Label.id)).all()
        base = target.base(api)
        return jsonify(whole_list('labels', [
            serialize.label_json(label, base, target.is_superevent)
            for label in labels], f'{base}labels/'))


def get_label(resolve, object_key, name):
    api = api_root()
    with _db().read() as session:
        target = resolve(session, object_key)
        label = session.scalar(select(Label).where(
            Label.object_id == target.object_id, Label.name == name))
        if label is None:
            abort(404, description=f'{target.public_id} has no label {name}')
        return jsonify(serialize.label_json(label, target.base(api),
                                            target.is_superevent))


def create_label(resolve, object_key, name):
    api = api_root()
    check_label(name)

    def tx(session):
        target = resolve(session, object_key)
        label = add_label(session, target.object_id, name)
        if label is None:
            return None, []
        data = serialize.label_json(label, target.base(api),
                                    target.is_superevent)
        # As GraceDb's label alerts: data is just the label's name.
        return data, [target.alert(session, api, 'label_added',
                                   {'name': name})]

    data, alerts = _db().write(tx)
    _publish(alerts)
    if data is None:
        # Applying a label twice leaves it applied, so that a client that
        # retries after a lost response does not get an error.
        return get_label(resolve, object_key, name)
    return jsonify(data), 201


def delete_label(resolve, object_key, name):
    api = api_root()

    def tx(session):
        target = resolve(session, object_key)
        label = session.scalar(select(Label).where(
            Label.object_id == target.object_id, Label.name == name))
        if label is None:
            abort(404, description=f'{target.public_id} has no label {name}')
        session.delete(label)
        session.flush()
        return [target.alert(session, api, 'label_removed', {'name': name})]

    _publish(_db().write(tx))
    return Response(status=204)


def list_logs(resolve, object_key):
    api = api_root()
    with _db().read() as session:
        target = resolve(session, object_key)
        logs = session.scalars(select(Log).where(
            Log.object_id == target.object_id).order_by(Log.N)).all()
        base = target.base(api)
        entries = [serialize.log_json(log, base, target.is_superevent)
                   for log in logs]
        return jsonify(whole_list('log', entries, base + (
            'logs/' if target.is_superevent else 'log/')))


def _get_log(session, target, n):
    log = session.scalar(select(Log).where(
        Log.object_id == target.object_id, Log.N == n))
    if log is None:
        abort(404, description=f'{target.public_id} has no log {n}')
    return log


def get_log(resolve, object_key, n):
    api = api_root()
    with _db().read() as session:
        target = resolve(session, object_key)
        return jsonify(serialize.log_json(
            _get_log(session, target, n), target.base(api),
            target.is_superevent))


def create_log(resolve, object_key):
    api = api_root()
    form = fields()
    comment = form.get('comment', '')
    tags = [t for t in form.getlist('tagname') if t]
    displays = form.getlist('displayName')
    label = form.get('label') or None
    if label:
        check_label(label)
    upload = request.files.get('upload')
    filename, content = '', None
    if upload is not None:
        filename = parse_filename(upload.filename)
        content = upload.read()
    if not comment.strip() and upload is None:
        bad_request('a log entry needs a comment or a file')

    def tx(session):
        target = resolve(session, object_key)
        log = add_log(session, target.object_id, comment, filename, content,
                      tags, displays)
        base = target.base(api)
        data = serialize.log_json(log, base, target.is_superevent)
        alerts = [target.alert(session, api, 'log', data)]
        if label and add_label(session, target.object_id, label):
            alerts.append(target.alert(session, api, 'label_added',
                                       {'name': label}))
        return data, alerts

    data, alerts = _db().write(tx)
    _publish(alerts)
    return jsonify(data), 201


def list_tags(resolve, object_key, n):
    with _db().read() as session:
        target = resolve(session, object_key)
        log = _get_log(session, target, n)
        return jsonify({'tags': [serialize.tag_json(t) for t in log.tags]})


def create_tag(resolve, object_key, n, name):
    api = api_root()
    form = fields()
    name = name or form.get('name')
    if not name or not re.match(r'^[\w.+-]{1,64}$', name):
        bad_request(f'bad tag name {name!r}')
    display = form.get('displayName') or name

    def tx(session):
        target = resolve(session, object_key)
        log = _get_log(session, target, n)
        if any(t.name == name for t in log.tags):
            return None, []
        tag = Tag(name=name, display=display)
        log.tags.append(tag)
        session.flush()
        data = serialize.log_json(log, target.base(api),
                                  target.is_superevent)
        return serialize.tag_json(tag), [
            target.alert(session, api, 'log', data)]

    data, alerts = _db().write(tx)
    _publish(alerts)
    if data is None:
        return jsonify({'name': name, 'displayName': display}), 200
    return jsonify(data), 201


def delete_tag(resolve, object_key, n, name):
    api = api_root()

    def tx(session):
        target = resolve(session, object_key)
        log = _get_log(session, target, n)
        tag = next((t for t in log.tags if t.name == name), None)
        if tag is None:
            abort(404, description=f'log {n} has no tag {name}')
        log.tags.remove(tag)
        session.delete(tag)
        session.flush()
        data = serialize.log_json(log, target.base(api),
                                  target.is_superevent)
        return [target.alert(session, api, 'log', data)]

    _publish(_db().write(tx))
    return Response(status=204)


def list_files(resolve, object_key):
    api = api_root()
    with _db().read() as session:
        target = resolve(session, object_key)
        return jsonify(serialize.files_json(session, target.object_id,
                                            target.base(api)))


def download_file(resolve, object_key, filename):
    name, sep, version = filename.rpartition(',')
    if not (sep and version.isdigit()):
        name, version = filename, None
    with _db().read() as session:
        target = resolve(session, object_key)
        query = select(File).where(File.object_id == target.object_id,
                                   File.name == name)
        if version is None:
            query = query.order_by(File.version.desc()).limit(1)
        else:
            query = query.where(File.version == int(version))
        record = session.scalar(query)
        if record is None:
            abort(404, description=f'{target.public_id} has no file '
                                   f'{filename}')
        content = record.content
    mimetype = mimetypes.guess_type(name)[0] or 'application/octet-stream'
    # Uploaded files are anyone's content: a browser must not run an
    # uploaded HTML page's scripts with this server's origin.
    return Response(content, mimetype=mimetype, headers={
        'Content-Disposition': f'inline; filename="{name}"',
        'Content-Security-Policy': 'sandbox',
        'X-Content-Type-Options': 'nosniff'})
