"""``gwcelery alerts``: a superevent's notices by hand, and its timeline.

``gwcelery alerts timeline SUPEREVENT_ID`` prints the superevent's latency
timeline (:mod:`gwcelery.timeline`): its ``timeline.json`` in GraceDb, or,
with ``--live`` or when GraceDb has none yet, what Redis holds now.
``gwcelery alerts send-update SUPEREVENT_ID [--skymap FILENAME]`` has the
running workers send an update notice with the superevent's latest sky map
(or the latest version of ``FILENAME``) and waits for the outcome.
"""
import json
import time

import click

from .. import notice_records, timeline


def _fail(message):
    raise click.ClickException(message)


@click.group('alerts')
def alerts():
    """Notices of superevents: send an update by hand, show timelines."""


def _gracedb_timeline(superevent_id):
    from ..tasks import gracedb
    try:
        content = gracedb.download(timeline.FILENAME, superevent_id)
    except Exception as e:
        if getattr(e, 'status_code', None) == 404:
            return None
        _fail(f'cannot read {timeline.FILENAME} of {superevent_id} from '
              f'GraceDb: {e}')
    try:
        return json.loads(content)
    except ValueError as e:
        _fail(f'{timeline.FILENAME} of {superevent_id} is not JSON: {e}')


@alerts.command('timeline')
@click.argument('superevent_id')
@click.option('--live', is_flag=True,
              help="Read the stages from Redis, not GraceDb's timeline.json.")
@click.option('--json', 'as_json', is_flag=True,
              help='Print the document as JSON instead of a table.')
def show_timeline(superevent_id, live, as_json):
    """Print the latency timeline of SUPEREVENT_ID."""
    doc = None if live else _gracedb_timeline(superevent_id)
    source = f'{timeline.FILENAME} in GraceDb'
    if doc is None:
        doc, source = timeline.assemble(superevent_id), 'Redis (live)'
    if not doc.get('stages'):
        _fail(f'no timeline of {superevent_id}')
    if as_json:
        click.echo(json.dumps(doc, indent=1))
        return
    click.echo(f'Latency timeline of {superevent_id}, from {source}:\n')
    click.echo(timeline.table(doc))


@alerts.command('send-update')
@click.argument('superevent_id')
@click.option('--skymap', metavar='FILENAME',
              help="A sky map of the superevent (default: its latest).")
@click.option('--timeout', type=float, default=120.0, show_default=True,
              help='Seconds to wait for the notice to be sent.')
def send_update(superevent_id, skymap, timeout):
    """Send an update notice of SUPEREVENT_ID with its latest sky map."""
    from ..tasks import notices
    try:
        answer = notices.send_update.delay(superevent_id, skymap).get(
            timeout=timeout)
    except ValueError as e:
        _fail(str(e))
    except Exception as e:
        _fail(f'the workers could not request the update: '
              f'{type(e).__name__}: {e}')
    kind = answer['kind']
    if answer['state']:
        # One update per version of a sky map: say what became of it.
        click.echo(f'{superevent_id}: {kind} was {answer["state"]} before')
    else:
        click.echo(f'{superevent_id}: {kind} requested')
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        record = notice_records.get(superevent_id, kind)
        if record.get('state') == 'sent':
            click.echo(f'Sent {record.get("ivorn")}.')
            return
        if record.get('state') == 'skipped':
            _fail(f'not sent: {record.get("reason")}')
        time.sleep(0.2)
    _fail(f'not sent within {timeout} s; see the superevent\'s log and the '
          'worker logs')
