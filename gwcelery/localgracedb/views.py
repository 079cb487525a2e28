"""HTML pages: a list of recent superevents and events, and one page per
event (``/events/<graceid>/view/``) and superevent
(``/superevents/<id>/view/``) with labels, logs, files and images shown
inline. The pages read through the same resources as the API.
"""
from flask import Blueprint, render_template_string
from sqlalchemy import select

from . import routes_common as common, serialize
from .models import Event, File, Label, Log, Superevent

__all__ = ('blueprint',)

blueprint = Blueprint('views', __name__)

_IMAGES = ('.png', '.jpg', '.jpeg', '.gif', '.svg')

_STYLE = '''<style>
body{font-family:sans-serif;margin:2em;max-width:70em}
table{border-collapse:collapse;margin-bottom:1em}
td,th{border:1px solid #ccc;padding:.2em .5em;text-align:left;
vertical-align:top} .label{background:#def;border-radius:.3em;
padding:0 .3em;margin-right:.3em} img{max-width:40em;display:block}
</style>'''

_INDEX = '''<!doctype html><html><head><meta charset="utf-8">
<title>Local GraceDb</title>''' + _STYLE + '''</head><body>
<h1>Local GraceDb</h1><p>API root: <a href="{{ api }}">{{ api }}</a></p>
<h2>Latest superevents</h2><table><tr><th>id</th><th>category</th>
<th>t_0</th><th>preferred event</th><th>labels</th></tr>
{% for s in superevents %}<tr><td><a href="{{ root }}superevents/{{
s.superevent_id }}/view/">{{ s.superevent_id }}</a></td><td>{{ s.category
}}</td><td>{{ s.t_0 }}</td><td>{{ s.preferred_event }}</td><td>{% for l in
s.labels %}<span class="label">{{ l }}</span>{% endfor %}</td></tr>
{% endfor %}</table>
<h2>Latest events</h2><table><tr><th>graceid</th><th>group</th>
<th>pipeline</th><th>search</th><th>gpstime</th><th>FAR (Hz)</th>
<th>labels</th></tr>{% for e in events %}<tr><td><a href="{{ root
}}events/{{ e.graceid }}/view/">{{ e.graceid }}</a></td><td>{{ e.group
}}</td><td>{{ e.pipeline }}</td><td>{{ e.search or '' }}</td><td>{{
e.gpstime }}</td><td>{{ e.far }}</td><td>{% for l in e.labels
%}<span class="label">{{ l }}</span>{% endfor %}</td></tr>{% endfor %}
</table></body></html>'''

_OBJECT = '''<!doctype html><html><head><meta charset="utf-8">
<title>{{ title }}</title>''' + _STYLE + '''</head><body>
<p><a href="{{ root }}">Local GraceDb</a></p><h1>{{ title }}</h1>
<p>{% for l in labels %}<span class="label">{{ l }}</span>{% endfor %}</p>
<table>{% for key, value in summary %}<tr><th>{{ key }}</th><td>{{ value
}}</td></tr>{% endfor %}</table>
{% if members %}<h2>Events</h2><ul>{% for m in members %}<li><a href="{{
root }}events/{{ m }}/view/">{{ m }}</a></li>{% endfor %}</ul>{% endif %}
<h2>Log</h2><table><tr><th>N</th><th>created</th><th>comment</th>
<th>file</th><th>tags</th></tr>{% for log in logs %}<tr><td>{{ log.N
}}</td><td>{{ log.created }}</td><td>{{ log.comment }}</td><td>{% if
log.filename %}<a href="{{ log.file }}">{{ log.filename }},{{
log.file_version }}</a>{% if log.image %}<img src="{{ log.file }}"
alt="{{ log.filename }}">{% endif %}{% endif %}</td><td>{{
log.tag_names|join(', ') }}</td></tr>{% endfor %}</table>
<h2>Files</h2><ul>{% for name, url in files %}<li><a href="{{ url }}">{{
name }}</a></li>{% endfor %}</ul></body></html>'''


def _root():
    return common.site_root()


@blueprint.get('/')
def index():
    api = common.api_root()
    with common.state().db.read() as session:
        events = session.scalars(
            select(Event).order_by(Event.id.desc()).limit(50)).all()
        superevents = session.scalars(select(Superevent).order_by(
            Superevent.id.desc()).limit(50)).all()
        labels = serialize.labels_of(
            session, [e.graceid for e in events]
            + [s.superevent_id for s in superevents])
        return render_template_string(
            _INDEX, api=api, root=_root(),
            events=[{**serialize.event_json(session, e, api,
                                            labels[e.graceid])}
                    for e in events],
            superevents=[{
                'superevent_id': serialize.superevent_display_id(s),
                'category': s.category, 't_0': s.t_0,
                'preferred_event': s.preferred_event,
                'labels': labels[s.superevent_id]} for s in superevents])


def _page(target, session, api, summary, members=()):
    base = target.base(api)
    logs = []
    for log in session.scalars(select(Log).where(
            Log.object_id == target.object_id).order_by(Log.N)):
        entry = serialize.log_json(log, base, target.is_superevent)
        entry['image'] = log.filename.lower().endswith(_IMAGES)
        logs.append(entry)
    labels = session.scalars(select(Label.name).where(
        Label.object_id == target.object_id).order_by(Label.id)).all()
    files = [(name, f'{base}files/{name}') for name in session.scalars(
        select(File.name).where(File.object_id == target.object_id)
        .distinct().order_by(File.name))]
    return render_template_string(
        _OBJECT, title=target.public_id, root=_root(), labels=labels,
        summary=summary, members=members, logs=logs, files=files)


@blueprint.get('/events/<graceid>/view/')
def event_page(graceid):
    api = common.api_root()
    with common.state().db.read() as session:
        target = common.event_target(session, graceid)
        e = target.record
        summary = [('group', e.group), ('pipeline', e.pipeline),
                   ('search', e.search), ('gpstime', e.gpstime),
                   ('FAR (Hz)', e.far), ('instruments', e.instruments),
                   ('superevent', e.superevent_id), ('created',
                                                     serialize.timestamp(
                                                         e.created))]
        grb = (e.extra_attributes or {}).get('GRB')
        if grb:
            summary += _external_summary(grb)
        return _page(target, session, api, summary)


def _external_summary(grb):
    """Rows of an external trigger's page: what the GCN notice said."""
    radius = grb.get('error_radius')
    return [('trigger id', grb.get('trigger_id')),
            ('RA, Dec (deg)', f"{grb.get('ra')}, {grb.get('dec')}"
             + (f' ± {radius}' if radius is not None else '')),
            ('coordinates', grb.get('coord_system')),
            ('trigger duration (s)', grb.get('trigger_duration')),
            ('instrument', grb.get('how_description')),
            ('notice', grb.get('ivorn'))]


@blueprint.get('/superevents/<sid>/view/')
def superevent_page(sid):
    api = common.api_root()
    with common.state().db.read() as session:
        target = common.superevent_target(session, sid)
        s = target.record
        members = session.scalars(select(Event.graceid).where(
            Event.superevent_id == s.superevent_id).order_by(Event.id)).all()
        summary = [('category', s.category), ('t_start', s.t_start),
                   ('t_0', s.t_0), ('t_end', s.t_end),
                   ('preferred event', s.preferred_event),
                   ('GW id', s.gw_id), ('created',
                                        serialize.timestamp(s.created))]
        return _page(target, session, api, summary, members)

