"""Superevents: ``/api/superevents/…``.

Create (``t_start``, ``t_0``, ``t_end``, ``preferred_event``,
``category``, ``events``, ``labels``), update (``PATCH``), get, search;
add and remove events; labels, logs, tags and files; VOEvents, which the
server builds (:mod:`~gwcelery.localgracedb.voevent`); confirm as GW.
"""
from flask import Blueprint, Response, abort, jsonify, request
from sqlalchemy import func, select

from . import gpstime, ids, routes_common as common, serialize
from .alerts import superevent_node
from .models import Event, File, Superevent, VOEvent
from .paging import page, whole_list
from .query import QueryError, superevent_conditions
from .voevent import VOEVENT_TYPES, build_voevent

__all__ = ('blueprint',)

blueprint = Blueprint('superevents', __name__,
                      url_prefix='/api/superevents')
_resolve = common.superevent_target

_SORTABLE = {'t_0': Superevent.t_0, 't_start': Superevent.t_start,
             't_end': Superevent.t_end, 'created': Superevent.id,
             'id': Superevent.id, 'superevent_id': Superevent.id,
             'preferred_event': Superevent.preferred_event}


def _category(value):
    for code, name in ids.CATEGORIES.items():
        if value and value.lower() in (code.lower(), name.lower()):
            return code
    common.bad_request(f'unknown category {value!r}; choose from '
                       f'{", ".join(ids.CATEGORIES.values())}')


def _event(session, graceid, what='event'):
    event = session.scalar(select(Event).where(Event.graceid == graceid))
    if event is None:
        common.bad_request(f'{what} {graceid!r} does not exist')
    return event


def _attach(session, event, superevent):
    """Put an event into a superevent after checking that it may go."""
    if event.superevent_id == superevent.superevent_id:
        return False
    if event.superevent_id is not None:
        common.bad_request(f'{event.graceid} is already in superevent '
                           f'{event.superevent_id}')
    category = ids.event_category(event.group, event.search)
    if event.group != 'External' and category != superevent.category:
        common.bad_request(
            f'{event.graceid} is a {ids.CATEGORIES[category]} event; the '
            f'superevent is {ids.CATEGORIES[superevent.category]}')
    event.superevent_id = superevent.superevent_id
    return True


def _times(form, required):
    times = {key: common.parse_float(form.get(key), key, required=required)
             for key in ('t_start', 't_0', 't_end')}
    if times['t_0'] is not None:
        # t_0 becomes a UTC date (the id) and time (VOEvents).
        try:
            gpstime.utc_fields(times['t_0'])
        except ValueError as e:
            common.bad_request(f't_0: {e}')
    return times


def _check_times(superevent):
    if not superevent.t_start <= superevent.t_0 <= superevent.t_end:
        common.bad_request('times must satisfy t_start <= t_0 <= t_end')


@blueprint.post('/', strict_slashes=False)
def create():
    api = common.api_root()
    form = common.fields()
    times = _times(form, required=True)
    category = _category(form.get('category', 'P'))
    preferred = form.get('preferred_event')
    if not preferred:
        common.bad_request('preferred_event is required')
    others = [e for e in form.getlist('events') if e]
    labels = [label for label in form.getlist('labels') if label]
    for label in labels:
        common.check_label(label)
    date = ids.date_code(times['t_0'])
    submitter = common.state().submitter

    def tx(session):
        sequence = (session.scalar(select(func.max(Superevent.sequence))
                                   .where(Superevent.category == category,
                                          Superevent.date == date)) or 0) + 1
        sid = f'{ids.superevent_prefix(category)}{date}{ids.letters(sequence)}'
        superevent = Superevent(
            superevent_id=sid, category=category, date=date,
            sequence=sequence, preferred_event=preferred,
            submitter=submitter, **times)
        _check_times(superevent)
        session.add(superevent)
        session.flush()
        preferred_event = _event(session, preferred, 'preferred_event')
        if preferred_event.group == 'External':
            common.bad_request('the preferred event cannot be External')
        for event in [preferred_event] + [
                _event(session, graceid) for graceid in others]:
            _attach(session, event, superevent)
        for label in labels:
            common.add_label(session, sid, label)
        session.flush()
        data = serialize.superevent_json(session, superevent, api)
        return data, [(superevent_node(category), sid, 'new',
                       data, data)]

    data, alerts = common.state().db.write(tx)
    common.state().alerts.send_all(alerts)
    return jsonify(data), 201


@blueprint.get('/', strict_slashes=False)
def search():
    api = common.api_root()
    try:
        condition = superevent_conditions(request.args.get('query', ''))
    except QueryError as e:
        common.bad_request(f'bad query: {e}')
    with common.state().db.read() as session:
        rows, links, total, start = page(
            session, select(Superevent).where(condition), _SORTABLE,
            Superevent.id, f'{api}superevents/')
        superevents = serialize.superevents_json(session, rows, api)
    return jsonify({'superevents': superevents, 'numRows': total,
                    'start': start, 'links': links})


@blueprint.get('/<sid>/')
def get(sid):
    api = common.api_root()
    with common.state().db.read() as session:
        return jsonify(_resolve(session, sid).json(session, api))


@blueprint.patch('/<sid>/')
def update(sid):
    api = common.api_root()
    form = common.fields()
    times = {k: v for k, v in _times(form, required=False).items()
             if v is not None}
    preferred = form.get('preferred_event') or None
    extra = {}
    if form.get('em_type'):
        extra['em_type'] = form.get('em_type')
    for key in ('time_coinc_far', 'space_coinc_far'):
        value = common.parse_float(form.get(key), key)
        if value is not None:
            extra[key] = value
    if not (times or preferred or extra):
        common.bad_request('nothing to update: give t_start, t_0, t_end, '
                           'preferred_event, em_type, time_coinc_far or '
                           'space_coinc_far')

    def tx(session):
        target = _resolve(session, sid)
        superevent = target.record
        for key, value in {**times, **extra}.items():
            setattr(superevent, key, value)
        _check_times(superevent)
        if preferred:
            event = _event(session, preferred, 'preferred_event')
            if event.group == 'External':
                common.bad_request('the preferred event cannot be External')
            _attach(session, event, superevent)
            superevent.preferred_event = preferred
        session.flush()
        data = target.json(session, api)
        return data, [(target.node, target.public_id, 'update', data, data)]

    data, alerts = common.state().db.write(tx)
    common.state().alerts.send_all(alerts)
    return jsonify(data)


@blueprint.get('/<sid>/events/')
def events(sid):
    api = common.api_root()
    with common.state().db.read() as session:
        target = _resolve(session, sid)
        members = session.scalars(select(Event).where(
            Event.superevent_id == target.object_id).order_by(Event.id))
        return jsonify(whole_list(
            'events', [serialize.event_json(session, e, api)
                       for e in members], f'{target.base(api)}events/'))


@blueprint.post('/<sid>/events/')
def add_event(sid):
    api = common.api_root()
    graceid = common.fields().get('event')
    if not graceid:
        common.bad_request('event is required')

    def tx(session):
        target = _resolve(session, sid)
        event = _event(session, graceid)
        added = _attach(session, event, target.record)
        session.flush()
        data = serialize.event_json(session, event, api)
        alerts = []
        if added:
            obj = target.json(session, api)
            alerts.append((target.node, target.public_id, 'event_added',
                           obj, obj))
        return data, alerts

    data, alerts = common.state().db.write(tx)
    common.state().alerts.send_all(alerts)
    return jsonify(data), 201


@blueprint.route('/<sid>/events/<graceid>/', methods=['GET', 'DELETE'])
def event(sid, graceid):
    api = common.api_root()

    def find(session):
        target = _resolve(session, sid)
        event = session.scalar(select(Event).where(
            Event.graceid == graceid,
            Event.superevent_id == target.object_id))
        if event is None:
            abort(404, description=f'{graceid} is not in {sid}')
        return target, event

    if request.method == 'GET':
        with common.state().db.read() as session:
            return jsonify(serialize.event_json(session, find(session)[1],
                                                api))

    def tx(session):
        target, event = find(session)
        if target.record.preferred_event == graceid:
            common.bad_request(f'{graceid} is the preferred event of '
                               f'{sid}; choose another one first')
        event.superevent_id = None
        session.flush()
        obj = target.json(session, api)
        return [(target.node, target.public_id, 'event_removed', obj, obj)]

    common.state().alerts.send_all(common.state().db.write(tx))
    return Response(status=204)


@blueprint.get('/<sid>/labels/')
def labels(sid):
    return common.list_labels(_resolve, sid)


@blueprint.post('/<sid>/labels/')
def add_label(sid):
    name = common.fields().get('name')
    if not name:
        common.bad_request('name is required')
    return common.create_label(_resolve, sid, name)


@blueprint.get('/<sid>/labels/<name>/')
def label(sid, name):
    return common.get_label(_resolve, sid, name)


@blueprint.delete('/<sid>/labels/<name>/')
def remove_label(sid, name):
    return common.delete_label(_resolve, sid, name)


@blueprint.get('/<sid>/logs/')
def logs(sid):
    return common.list_logs(_resolve, sid)


@blueprint.post('/<sid>/logs/')
def write_log(sid):
    return common.create_log(_resolve, sid)


@blueprint.get('/<sid>/logs/<int:n>/')
def log(sid, n):
    return common.get_log(_resolve, sid, n)


@blueprint.get('/<sid>/logs/<int:n>/tags/')
def tags(sid, n):
    return common.list_tags(_resolve, sid, n)


@blueprint.post('/<sid>/logs/<int:n>/tags/')
def add_tag(sid, n):
    return common.create_tag(_resolve, sid, n, None)


@blueprint.delete('/<sid>/logs/<int:n>/tags/<name>/')
def remove_tag(sid, n, name):
    return common.delete_tag(_resolve, sid, n, name)


@blueprint.get('/<sid>/files/')
def files(sid):
    return common.list_files(_resolve, sid)


@blueprint.get('/<sid>/files/<path:filename>')
def download(sid, filename):
    return common.download_file(_resolve, sid, filename)


@blueprint.post('/<sid>/confirm-as-gw/')
def confirm_as_gw(sid):
    api = common.api_root()
    requested = common.fields().get('gw_id') or None

    def tx(session):
        target = _resolve(session, sid)
        superevent = target.record
        if superevent.gw_id:
            common.bad_request(f'{sid} is already confirmed as '
                               f'{superevent.gw_id}')
        prefix = ids.gw_prefix(superevent.category) + superevent.date
        if requested:
            if not requested.startswith(prefix):
                common.bad_request(f'gw_id must start with {prefix}')
            gw_id = requested
        else:
            taken = session.scalar(select(func.count()).where(
                Superevent.gw_id.like(prefix + '%')))
            gw_id = prefix + (ids.letters(taken + 1) if taken else '')
        if session.scalar(select(Superevent).where(
                Superevent.gw_id == gw_id)):
            common.bad_request(f'{gw_id} is taken')
        superevent.gw_id = gw_id
        session.flush()
        data = serialize.superevent_json(session, superevent, api)
        return data, [(target.node, gw_id, 'confirmed_as_gw', data, data)]

    data, alerts = common.state().db.write(tx)
    common.state().alerts.send_all(alerts)
    return jsonify(data), 201


@blueprint.get('/<sid>/voevents/')
def voevents(sid):
    api = common.api_root()
    with common.state().db.read() as session:
        target = _resolve(session, sid)
        rows = session.scalars(select(VOEvent).where(
            VOEvent.object_id == target.object_id).order_by(VOEvent.N))
        base = target.base(api)
        return jsonify(whole_list(
            'voevents', [serialize.voevent_json(v, base) for v in rows],
            f'{base}voevents/'))


@blueprint.get('/<sid>/voevents/<int:n>/')
def voevent(sid, n):
    api = common.api_root()
    with common.state().db.read() as session:
        target = _resolve(session, sid)
        row = session.scalar(select(VOEvent).where(
            VOEvent.object_id == target.object_id, VOEvent.N == n))
        if row is None:
            abort(404, description=f'{sid} has no VOEvent {n}')
        return jsonify(serialize.voevent_json(row, target.base(api)))


_PROBABILITIES = ('ProbHasNS', 'ProbHasRemnant', 'HasMassGap', 'BNS',
                  'NSBH', 'BBH', 'Terrestrial')
_FLAGS = ('internal', 'open_alert', 'hardware_inj', 'CoincComment',
          'raven_coinc')


@blueprint.post('/<sid>/voevents/')
def create_voevent(sid):
    api = common.api_root()
    form = common.fields()
    voevent_type = form.get('voevent_type')
    if voevent_type not in VOEVENT_TYPES:
        common.bad_request(f'voevent_type must be one of '
                           f'{", ".join(VOEVENT_TYPES)}')
    options = {key: common.parse_bool(form.get(key, 'False'), key)
               for key in _FLAGS}
    for key in _PROBABILITIES:
        options[key] = common.parse_float(form.get(key), key, low=0, high=1)
    for key in ('skymap_type', 'skymap_filename',
                'combined_skymap_filename'):
        options[key] = form.get(key) or None
    if voevent_type in ('IN', 'UP') and not options['skymap_filename']:
        common.bad_request(f'a {VOEVENT_TYPES[voevent_type]} VOEvent needs '
                           'skymap_filename')

    def tx(session):
        target = _resolve(session, sid)
        superevent = target.record
        base = target.base(api)
        skymap_url = None
        if options['skymap_filename']:
            if not session.scalar(select(File.id).where(
                    File.object_id == target.object_id,
                    File.name == options['skymap_filename']).limit(1)):
                common.bad_request(f'{target.public_id} has no file '
                                   f'{options["skymap_filename"]}')
            skymap_url = f'{base}files/{options["skymap_filename"]}'
        preferred = session.scalar(select(Event).where(
            Event.graceid == superevent.preferred_event))
        previous = session.scalars(select(VOEvent.ivorn).where(
            VOEvent.object_id == target.object_id).order_by(
                VOEvent.N)).all()
        n = len(previous) + 1
        event_page = (common.site_root()
                      + f'superevents/{target.public_id}/view/')
        ivorn, xml = build_voevent(
            {'superevent_id': target.public_id,
             'category': superevent.category, 't_0': superevent.t_0},
            {'group': preferred.group, 'pipeline': preferred.pipeline,
             'search': preferred.search, 'far': preferred.far,
             'instruments': preferred.instruments},
            n, voevent_type, options, skymap_url, event_page, previous)
        filename = ivorn.rsplit('#', 1)[-1] + '.xml'
        log = common.add_log(session, target.object_id,
                             f'New VOEvent ({VOEVENT_TYPES[voevent_type]})',
                             filename, xml, ['em_follow'])
        row = VOEvent(object_id=target.object_id, N=n,
                      voevent_type=voevent_type, ivorn=ivorn,
                      filename=filename, file_version=log.file_version,
                      parameters=options, issuer=common.state().submitter)
        session.add(row)
        session.flush()
        data = serialize.voevent_json(row, base)
        log_data = serialize.log_json(log, base, True)
        return data, [target.alert(session, api, 'log', log_data),
                      target.alert(session, api, 'voevent', data)]

    data, alerts = common.state().db.write(tx)
    common.state().alerts.send_all(alerts)
    return jsonify(data), 201
