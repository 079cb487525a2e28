"""External triggers: GCN notices of gamma-ray bursts and supernova
neutrinos become External events in GraceDb.

:func:`handle_gcn` is the ``@gcn.handler`` of every notice type of
:data:`gwcelery.gcn_notices.NOTICE_TYPES` (Fermi GBM, Swift BAT,
INTEGRAL, AGILE, SNEWS). It runs on the ``exttrig`` queue and is
acknowledged only when done. :func:`gwcelery.gcn_notices.read` decides what
the notice becomes; then, holding a Redis lock on (pipeline, trigger id) so
that two notices of one trigger are never handled at once (two workers, a
redelivery), the handler looks the trigger up in GraceDb::

    group: External pipeline: Fermi grbevent.trigger_id = "548848711"

and creates the event with the notice as its file, or replaces the file
of the event it found (an event is never duplicated). A notice whose IVORN
is already the event's is not uploaded again (a redelivery). The
``NOT_GRB`` label follows the latest notice: applied when it says the
trigger is not a GRB, removed when a later one says it is.

Skipped notices (low reliability, test or utility roles) are logged at
INFO; malformed ones at ERROR with their IVORN; neither raises. Transient
GraceDb failures are retried; a request GraceDb refuses for good is logged
and the notice dropped.
"""
import logging
import re

from .. import app, gcn_notices, locks
from ..util import xml
from ..vtp.parsing import get_notice_type
from . import gcn, gracedb

__all__ = ('handle_gcn', 'record')

log = logging.getLogger(__name__)

#: Seconds the per-trigger lock lives if its holder dies.
LOCK_TTL = 120.0

#: Seconds a notice waits for the lock of its trigger before the task is
#: retried.
LOCK_WAIT = 10.0


def _parse(payload):
    """The notice's root element, under the project's safe XML policy.

    Raises
    ------
    gwcelery.util.xml.XMLError
        The payload is refused (a :class:`ValueError`).
    """
    return xml.parse(payload, app.conf.vtp_max_packet_size)


def _graceid_number(event):
    match = re.search(r'(\d+)$', event.get('graceid') or '')
    return int(match.group(1)) if match else float('inf')


def _query(notice):
    return (f'group: {notice.group} pipeline: {notice.pipeline} '
            f'grbevent.trigger_id = "{notice.trigger_id}"')


def record(payload, notice):
    """Create or update the event of a notice's trigger.

    Parameters
    ----------
    payload : bytes
        The notice's XML, uploaded as the event's file.
    notice : gwcelery.gcn_notices.Notice

    Returns
    -------
    graceid : str
        The trigger's event.
    action : str
        ``'created'``, ``'replaced'`` or ``'unchanged'``.
    """
    with locks.hold(f'exttrig:{notice.pipeline}:{notice.trigger_id}',
                    ttl=LOCK_TTL, wait=LOCK_WAIT):
        events = sorted(gracedb.get_events(_query(notice)),
                        key=_graceid_number)
        if not events:
            event = gracedb.create_event(
                payload, notice.search, notice.pipeline, notice.group,
                labels=['NOT_GRB'] if notice.not_grb else ())
            return event['graceid'], 'created'
        if len(events) > 1:
            log.warning('Trigger %s of %s has %d events (%s); updating the '
                        'first', notice.trigger_id, notice.pipeline,
                        len(events), ', '.join(e['graceid'] for e in events))
        event = events[0]
        graceid = event['graceid']
        grb = (event.get('extra_attributes') or {}).get('GRB') or {}
        action = 'unchanged'
        if grb.get('ivorn') != notice.ivorn:
            gracedb.replace_event(graceid, payload)
            action = 'replaced'
        labelled = 'NOT_GRB' in (event.get('labels') or ())
        if notice.not_grb and not labelled:
            gracedb.create_label('NOT_GRB', graceid)
        elif not notice.not_grb and labelled:
            gracedb.remove_label('NOT_GRB', graceid)
        return graceid, action


@gcn.handler(*gcn_notices.NOTICE_TYPES, queue='exttrig', shared=False,
             bind=True, acks_late=True, reject_on_worker_lost=True,
             ignore_result=True, max_retries=None)
def handle_gcn(self, payload):
    """Record one GCN notice of an external trigger in GraceDb.

    Parameters
    ----------
    payload : bytes
        The notice's VOEvent XML.
    """
    if isinstance(payload, str):
        payload = payload.encode('utf-8')
    ivorn = None
    try:
        root = _parse(payload)
        ivorn = root.get('ivorn')
        outcome = gcn_notices.read(root, get_notice_type(root))
    except ValueError as e:
        log.error('Dropping GCN notice %s: %s', ivorn or '(no IVORN)', e)
        return
    if isinstance(outcome, gcn_notices.Skip):
        log.info('Ignoring GCN notice %s: %s', ivorn, outcome.reason)
        return
    try:
        graceid, action = record(payload, outcome)
    except locks.LockTimeout as exc:
        log.info('GCN notice %s waits for another notice of trigger %s: %s',
                 ivorn, outcome.trigger_id, exc)
        raise self.retry(exc=exc, countdown=1)
    except Exception as exc:
        gracedb.retry_or_drop(self, exc, f'GCN notice {ivorn}')
        return
    log.info('GCN notice %s (%s trigger %s): event %s %s%s', ivorn,
             outcome.pipeline, outcome.trigger_id, graceid, action,
             f'; NOT_GRB: {outcome.not_grb}' if outcome.not_grb else '')
