"""JSON shapes of GraceDb resources, as the REST API returns them.

Every function takes the API root URL (``http://host:port/api/``) to build
``links``. Times are GraceDb's ``YYYY-MM-DD HH:MM:SS UTC`` strings.
"""
from sqlalchemy import select

from . import ids
from .models import Event, File, Label, Superevent

__all__ = ('timestamp', 'event_json', 'superevent_json', 'superevents_json',
           'label_json', 'log_json', 'tag_json', 'voevent_json',
           'labels_of', 'members_of', 'superevent_display_id', 'files_json',
           'object_base',
           'is_external')


def timestamp(when):
    return when.strftime('%Y-%m-%d %H:%M:%S UTC') if when else None


def labels_of(session, object_ids):
    """``{object_id: [label name, …]}`` in the order they were applied."""
    result = {object_id: [] for object_id in object_ids}
    if object_ids:
        rows = session.execute(
            select(Label.object_id, Label.name)
            .where(Label.object_id.in_(list(object_ids)))
            .order_by(Label.id))
        for object_id, name in rows:
            result[object_id].append(name)
    return result


def members_of(session, superevent_ids):
    """``{superevent_id: [(graceid, group, pipeline), …]}`` of their events, in the
    order they were uploaded: only ids and groups, so that a superevent's
    JSON costs the same however many events it holds."""
    result = {sid: [] for sid in superevent_ids}
    if superevent_ids:
        rows = session.execute(
            select(Event.superevent_id, Event.graceid, Event.group,
                   Event.pipeline)
            .where(Event.superevent_id.in_(list(superevent_ids)))
            .order_by(Event.id))
        for sid, graceid, group, pipeline in rows:
            result[sid].append((graceid, group, pipeline))
    return result


def superevent_display_id(superevent):
    """The superevent's public id: its GW id once confirmed."""
    return superevent.gw_id or superevent.superevent_id


#: Pipelines of the events made from GCN notices (see
#: :func:`is_external`).
NOTICE_PIPELINES = frozenset(('Fermi', 'Swift', 'INTEGRAL', 'AGILE', 'SNEWS'))


def _external_member(group, pipeline):
    # is_external from the columns members_of reads: a Test event made from
    # a notice has one of the notices' pipelines.
    return group == 'External' or pipeline in NOTICE_PIPELINES


def is_external(event):
    """Whether an event is an external trigger, one of a superevent's
    ``em_events``: group External, or a Test event made from a GCN notice
    (a SNEWS drill)."""
    return event.group == 'External' or 'GRB' in (event.extra_attributes
                                                  or {})


def event_json(session, event, api, labels=None):
    base = f'{api}events/{event.graceid}'
    if labels is None:
        labels = labels_of(session, [event.graceid])[event.graceid]
    superevent = None
    if event.superevent_id:
        record = session.scalar(select(Superevent).where(
            Superevent.superevent_id == event.superevent_id))
        superevent = superevent_display_id(record) if record else None
    return {
        'graceid': event.graceid,
        'group': event.group,
        'pipeline': event.pipeline,
        'search': event.search,
        'gpstime': event.gpstime,
        'far': event.far,
        'far_is_upper_limit': False,
        'instruments': event.instruments,
        'nevents': event.nevents,
        'likelihood': event.likelihood,
        'offline': event.offline,
        'labels': labels,
        'extra_attributes': event.extra_attributes or {},
        'superevent': superevent,
        'superevent_neighbours': {},
        'submitter': event.submitter,
        'created': timestamp(event.created),
        'links': {
            'self': base,
            'log': f'{base}/log/',
            'files': f'{base}/files/',
            'labels': f'{base}/labels/',
            'tags': f'{base}/tag/',
            'emobservations': f'{base}/emobservation/',
            'neighbors': f'{base}/neighbors/',
        },
    }


def superevents_json(session, superevents, api):
    """The JSON of several superevents, with a handful of queries in all
    rather than a few for each (a search's page)."""
    sids = [s.superevent_id for s in superevents]
    labels = labels_of(session, sids)
    members = members_of(session, sids)
    wanted = {s.preferred_event for s in superevents}
    preferred = {e.graceid: e for e in session.scalars(
        select(Event).where(Event.graceid.in_(wanted)))} if wanted else {}
    preferred_labels = labels_of(session, list(preferred))
    return [superevent_json(
        session, s, api, labels[s.superevent_id], members[s.superevent_id],
        preferred.get(s.preferred_event),
        preferred_labels.get(s.preferred_event)) for s in superevents]


def superevent_json(session, superevent, api, labels=None, members=None,
                    preferred=None, preferred_labels=None):
    """A superevent's JSON; the optional arguments are what
    :func:`superevents_json` has already read."""
    sid = superevent.superevent_id
    public = superevent_display_id(superevent)
    base = f'{api}superevents/{public}/'
    if labels is None:
        labels = labels_of(session, [sid])[sid]
    if members is None:
        members = members_of(session, [sid])[sid]
    if preferred is None:
        preferred = session.scalar(select(Event).where(
            Event.graceid == superevent.preferred_event))
    return {
        'superevent_id': public,
        'default_superevent_id': sid,
        'gw_id': superevent.gw_id,
        'category': ids.CATEGORIES[superevent.category],
        'created': timestamp(superevent.created),
        'submitter': superevent.submitter,
        'preferred_event': superevent.preferred_event,
        'preferred_event_data': (
            event_json(session, preferred, api, preferred_labels)
            if preferred else None),
        'em_type': superevent.em_type,
        'time_coinc_far': superevent.time_coinc_far,
        'space_coinc_far': superevent.space_coinc_far,
        't_start': superevent.t_start,
        't_0': superevent.t_0,
        't_end': superevent.t_end,
        'gw_events': [g for g, group, pipeline in members
                      if not _external_member(group, pipeline)],
        'em_events': [g for g, group, pipeline in members
                      if _external_member(group, pipeline)],
        'far': preferred.far if preferred else None,
        'labels': labels,
        'links': {
            'self': base,
            'events': f'{base}events/',
            'labels': f'{base}labels/',
            'logs': f'{base}logs/',
            'files': f'{base}files/',
            'voevents': f'{base}voevents/',
            'emobservations': f'{base}emobservations/',
        },
    }


def object_base(api, public_id, is_superevent):
    if is_superevent:
        return f'{api}superevents/{public_id}/'
    return f'{api}events/{public_id}/'


def label_json(label, base, is_superevent):
    return {
        'name': label.name,
        'creator': label.creator,
        'created': timestamp(label.created),
        'self': f'{base}labels/{label.name}' + ('/' if is_superevent else ''),
    }


def tag_json(tag):
    return {'name': tag.name, 'displayName': tag.display or tag.name}


def log_json(log, base, is_superevent):
    logs = 'logs' if is_superevent else 'log'
    this = f'{base}{logs}/{log.N}' + ('/' if is_superevent else '')
    file_url = ''
    if log.filename:
        file_url = f'{base}files/{log.filename},{log.file_version}'
    return {
        'N': log.N,
        'comment': log.comment,
        'filename': log.filename,
        'file_version': log.file_version,
        'file': file_url,
        'issuer': log.issuer,
        'created': timestamp(log.created),
        'tag_names': [tag.name for tag in log.tags],
        'self': this,
        'tags': f'{this}tags/' if is_superevent else f'{this}/tag/',
    }


def voevent_json(voevent, base):
    p = voevent.parameters or {}
    file_url = f'{base}files/{voevent.filename},{voevent.file_version}'
    return {
        'N': voevent.N,
        'voevent_type': voevent.voevent_type,
        'ivorn': voevent.ivorn,
        'filename': voevent.filename,
        'file_version': voevent.file_version,
        'file': file_url,
        'issuer': voevent.issuer,
        'created': timestamp(voevent.created),
        'skymap_type': p.get('skymap_type'),
        'skymap_filename': p.get('skymap_filename'),
        'internal': p.get('internal'),
        'open_alert': p.get('open_alert'),
        'hardware_inj': p.get('hardware_inj'),
        'coinc_comment': p.get('CoincComment'),
        'prob_has_ns': p.get('ProbHasNS'),
        'prob_has_remnant': p.get('ProbHasRemnant'),
        'prob_has_mass_gap': p.get('HasMassGap'),
        'prob_bns': p.get('BNS'),
        'prob_nsbh': p.get('NSBH'),
        'prob_bbh': p.get('BBH'),
        'prob_terrestrial': p.get('Terrestrial'),
        'links': {'self': f'{base}voevents/{voevent.N}/', 'file': file_url},
    }


def files_json(session, object_id, base):
    """``{name: url, 'name,N': url}`` for every file and version."""
    result = {}
    rows = session.execute(select(File.name, File.version).where(
        File.object_id == object_id).order_by(File.name, File.version))
    for name, version in rows:
        result[f'{name},{version}'] = f'{base}files/{name},{version}'
        result[name] = f'{base}files/{name}'
    return result

