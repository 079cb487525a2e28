"""HTML pages: a list of recent superevents and events, and one page per
event (``/events/<graceid>/view/``) and superevent
(``/superevents/<id>/view/``) with labels, logs, files and images shown
inline. The pages read through the same resources as the API.

An object's page shows at the top the latest version of each of its images
(the sky-map plots) and the numbers of its classification files
(:data:`CLASSIFICATION_FILES`: ``p_astro.json``, ``em_bright.json``); a
superevent without images or classification of its own shows its
preferred event's, saying so. A superevent with a ``timeline.json``
(:mod:`gwcelery.timeline`) shows its latest version as a table with a bar
per stage, from the stage before to it, on a common time axis. Log
comments are shown as HTML restricted to a few harmless tags
(:mod:`.htmlsafe`).
"""
import json
import math

from flask import Blueprint, render_template_string
from sqlalchemy import func, select

from .. import timeline as _timeline
from . import routes_common as common, serialize
from .htmlsafe import sanitize
from .models import Event, File, Label, Log, Superevent

__all__ = ('blueprint', 'CLASSIFICATION_FILES')

blueprint = Blueprint('views', __name__)

_IMAGES = ('.png', '.jpg', '.jpeg', '.gif', '.svg')

#: Files whose numbers the pages show, with their headings.
CLASSIFICATION_FILES = (
    ('p_astro.json', 'Source category probabilities (p_astro)'),
    ('em_bright.json', 'Source properties (em_bright)'))

_STYLE = '''<style>
body{font-family:sans-serif;margin:2em;max-width:70em}
table{border-collapse:collapse;margin-bottom:1em}
td,th{border:1px solid #ccc;padding:.2em .5em;text-align:left;
vertical-align:top} .label{background:#def;border-radius:.3em;
padding:0 .3em;margin-right:.3em} img{max-width:40em;display:block}
.thumb{max-width:12em}
.products{display:flex;flex-wrap:wrap;gap:1em;align-items:flex-start}
figure{margin:0} .note{color:#555}
.timeline .bar{width:24em;padding:0} .timeline .bar span{display:block;
height:.9em;margin:.25em 0;background:#47a;min-width:2px}
.timeline td.n{text-align:right;font-family:monospace}
.timeline td.t{white-space:nowrap}
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
{% if images %}<h2>Sky maps and images</h2>{% if images_from %}<p
class="note">From the preferred event <a href="{{ root }}events/{{
images_from }}/view/">{{ images_from }}</a>.</p>{% endif %}<div
class="products">{% for name, url in images %}<figure><img src="{{ url
}}" alt="{{ name }}"><figcaption><a href="{{ url }}">{{ name
}}</a></figcaption></figure>{% endfor %}</div>{% endif %}
{% if classification %}<h2>Classification</h2>{% if classification_from
%}<p class="note">From the preferred event <a href="{{ root }}events/{{
classification_from }}/view/">{{ classification_from }}</a>.</p>{% endif
%}<div class="products">{% for c in classification %}<table
class="classification" data-file="{{ c.name }}"><tr><th colspan="2">{{
c.heading }} <a href="{{ c.url }}">{{ c.name }}</a></th></tr>{% if
c.rows %}{% for key, value in c.rows %}<tr><td>{{ key }}</td><td>{{ value
}}</td></tr>{% endfor %}{% else %}<tr><td colspan="2">unreadable: not a
JSON object of numbers</td></tr>{% endif %}</table>{% endfor %}</div>{%
endif %}
{% if timeline %}<h2>Latency timeline</h2><table class="timeline"><tr>
<th>stage</th><th>UTC</th><th>+s</th><th>Δs</th><th>from the stage before
</th><th>detail</th></tr>{% for r in timeline %}<tr><td>{{ r.description
}}</td><td class="t">{{ r.utc }}</td><td class="n">{{ '%.3f'|format(r.since_start)
}}</td><td class="n">{{ '%.3f'|format(r.since_previous) }}</td><td
class="bar"><span style="margin-left:{{ '%.2f'|format(r.left) }}%;width:{{
'%.2f'|format(r.width) }}%"></span></td><td>{{ r.detail }}</td></tr>{%
endfor %}</table>{% endif %}
{% if members %}<h2>Events</h2><ul>{% for m in members %}<li><a href="{{
root }}events/{{ m }}/view/">{{ m }}</a></li>{% endfor %}</ul>{% endif %}
<h2>Log</h2><table><tr><th>N</th><th>created</th><th>comment</th>
<th>file</th><th>tags</th></tr>{% for log in logs %}<tr><td>{{ log.N
}}</td><td>{{ log.created }}</td><td>{{ log.comment_html }}</td><td>{%
if log.filename %}<a href="{{ log.file }}">{{ log.filename }},{{
log.file_version }}</a>{% if log.image %}<img class="thumb" src="{{
log.file }}" alt="{{ log.filename }}">{% endif %}{% endif %}</td><td>{{
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


def _latest_files(session, object_id):
    """``{name: latest version}`` of an object's files."""
    return dict(session.execute(
        select(File.name, func.max(File.version))
        .where(File.object_id == object_id).group_by(File.name)).all())


def _numbers(content):
    """``[(key, formatted number), …]`` of a JSON object's numeric values,
    or ``None`` if the content is not a JSON object with any."""
    try:
        data = json.loads(content)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    if not isinstance(data, dict):
        return None
    rows = [(str(key), f'{value:.3g}') for key, value in data.items()
            if isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value)]
    return rows or None


def _products(session, object_id, base):
    """The images and classification tables of an object."""
    latest = _latest_files(session, object_id)
    images = [(name, f'{base}files/{name},{version}')
              for name, version in sorted(latest.items())
              if name.lower().endswith(_IMAGES)]
    classification = []
    for name, heading in CLASSIFICATION_FILES:
        if name not in latest:
            continue
        content = session.scalar(select(File.content).where(
            File.object_id == object_id, File.name == name,
            File.version == latest[name]))
        classification.append({
            'name': name, 'heading': heading, 'rows': _numbers(content),
            'url': f'{base}files/{name},{latest[name]}'})
    return images, classification


def _timeline_rows(session, object_id):
    """The rows of the object's latest ``timeline.json``, each with the
    ``left`` and ``width`` (percent of the whole span) of its bar."""
    version = _latest_files(session, object_id).get(_timeline.FILENAME)
    if version is None:
        return []
    content = session.scalar(select(File.content).where(
        File.object_id == object_id, File.name == _timeline.FILENAME,
        File.version == version))
    try:
        rows = _timeline.rows(json.loads(content))
    except (UnicodeDecodeError, ValueError, RecursionError, TypeError,
            AttributeError):
        return []
    span = max([r['since_start'] for r in rows] + [1e-9])
    for r in rows:
        r['left'] = 100 * (r['since_start'] - r['since_previous']) / span
        r['width'] = 100 * r['since_previous'] / span
    return rows


def _page(target, session, api, summary, members=()):
    base = target.base(api)
    logs = []
    for log in session.scalars(select(Log).where(
            Log.object_id == target.object_id).order_by(Log.N)):
        entry = serialize.log_json(log, base, target.is_superevent)
        entry['image'] = log.filename.lower().endswith(_IMAGES)
        entry['comment_html'] = sanitize(log.comment)
        logs.append(entry)
    images, classification = _products(session, target.object_id, base)
    images_from = classification_from = None
    preferred = getattr(target.record, 'preferred_event', None)
    if target.is_superevent and preferred and not (images
                                                   and classification):
        event_images, event_classification = _products(
            session, preferred, f'{api}events/{preferred}/')
        if not images and event_images:
            images, images_from = event_images, preferred
        if not classification and event_classification:
            classification = event_classification
            classification_from = preferred
    labels = session.scalars(select(Label.name).where(
        Label.object_id == target.object_id).order_by(Label.id)).all()
    files = [(name, f'{base}files/{name}') for name in session.scalars(
        select(File.name).where(File.object_id == target.object_id)
        .distinct().order_by(File.name))]
    return render_template_string(
        _OBJECT, title=target.public_id, root=_root(), labels=labels,
        summary=summary, members=members, logs=logs, files=files,
        images=images, images_from=images_from,
        classification=classification,
        classification_from=classification_from,
        timeline=(_timeline_rows(session, target.object_id)
                  if target.is_superevent else []))


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

