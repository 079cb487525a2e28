"""The mock-event stream: the first2years bank, uploaded as if live.

When :data:`~gwcelery.conf.mock_events_enabled` is true (the ``local``
preset; never in production), beat runs :func:`upload_event` every
:data:`~gwcelery.conf.mock_events_period` seconds. Each run takes the next
event of the bank (:mod:`gwcelery.data.first2years`, in turn), moves it to
the present by whole sidereal days (:func:`gwcelery.mock_events.shift`)
and uploads it to GraceDb as search ``MDC``, group ``CBC``, once for each
pipeline of :data:`~gwcelery.conf.mock_events_pipelines`, each copy a
little different (:func:`gwcelery.mock_events.near_copy`), each followed
by its noise PSD as the log file ``psd.xml.gz``, as the pipelines do. The
superevent manager gathers the copies into one ``MS`` superevent, and the
rest of the chain (sky map, notices) follows.

:data:`~gwcelery.conf.mock_events_advocate_delay` seconds later,
:func:`advocate` plays the human advocate: it labels that superevent
``ADVOK`` or ``ADVNO`` at random (:data:`~gwcelery.conf.mock_events_advok_probability`).
With probability :data:`~gwcelery.conf.mock_events_grb_probability`, a
Fermi GBM notice of a burst a second after the candidate, with a fresh
trigger id, goes to the local GCN feed (:func:`replay_grb`), so that
external-trigger handling and coincidence searches run too.

The last upload is recorded in Redis under :data:`LAST_KEY`.
"""
import json
import logging
import random
import time
from importlib import resources

import redis

from .. import app, mock_events
from ..data import first2years
from . import gracedb

__all__ = ('COUNTER_KEY', 'LAST_KEY', 'gps_now', 'pick', 'make_uploads',
           'upload_event', 'upload_copy', 'advocate', 'replay_grb')

log = logging.getLogger(__name__)

#: Redis counter that chooses the next bank event (round robin).
COUNTER_KEY = 'gwcelery:first2years:counter'

#: Redis key of a JSON record of the last upload, with ``time`` (Unix),
#: ``name``, ``gpstime`` and ``pipelines``.
LAST_KEY = 'gwcelery:first2years:last'

#: Package file of the Fermi GBM notice that :func:`replay_grb` rewrites.
GRB_TEMPLATE = 'fermi_grb_gcn.xml'


def gps_now():
    """The current GPS time (float seconds)."""
    from astropy.time import Time
    return float(Time.now().gps)


def _redis():
    return redis.Redis.from_url(app.conf.broker_url)


def pick(counter):
    """The bank entry for upload number ``counter`` (round robin, or the
    seeded random sequence of :data:`~gwcelery.conf.mock_events_seed`)."""
    bank = first2years.events()
    seed = app.conf.mock_events_seed
    if seed is None:
        return bank[counter % len(bank)]
    return random.Random(f'{seed}:{counter}').choice(bank)


def make_uploads(entry, now, rng, pipelines):
    """The files of one mock candidate: ``[(pipeline, coinc bytes)]`` and
    the PSD bytes.

    The first pipeline's copy is the bank event moved to ``now``; the
    others are near copies of it.
    """
    base = mock_events.load(first2years.read(entry['coinc']))
    mock_events.shift(base, now)
    psd = first2years.read(mock_events.psd_name(base) or entry['psd'])
    first = mock_events.dump(base)
    uploads = []
    for i, pipeline in enumerate(pipelines):
        if i == 0:
            uploads.append((pipeline, first))
            continue
        copy = mock_events.load(first)
        mock_events.near_copy(copy, rng)
        uploads.append((pipeline, mock_events.dump(copy)))
    return uploads, psd


@app.task(shared=False, ignore_result=True)
def upload_event():
    """Upload the next mock candidate (see the module's description)."""
    conf = app.conf
    client = _redis()
    try:
        counter = client.incr(COUNTER_KEY) - 1
    finally:
        client.close()
    seed = conf.mock_events_seed
    rng = random.Random(f'{seed}:{counter}:jitter') if seed is not None \
        else random.SystemRandom()
    entry = pick(counter)
    now = gps_now()
    pipelines = list(conf.mock_events_pipelines)
    uploads, psd = make_uploads(entry, now, rng, pipelines)
    gpstime = mock_events.event_time(mock_events.load(uploads[0][1]))
    log.info('Mock event %d: %s (%s) at GPS %.3f from %s', counter,
             entry['name'], entry['source'], gpstime, ', '.join(pipelines))
    for i, (pipeline, coinc) in enumerate(uploads):
        upload_copy.delay(coinc, pipeline, psd, judge=(i == 0))
    if rng.random() < conf.mock_events_grb_probability:
        replay_grb.delay(gpstime + rng.uniform(0.5, 1.5))
    client = _redis()
    try:
        client.set(LAST_KEY, json.dumps({
            'time': time.time(), 'name': entry['name'], 'gpstime': gpstime,
            'pipelines': pipelines}))
    finally:
        client.close()
    return gpstime


@app.task(bind=True, shared=False, ignore_result=True, max_retries=10)
def upload_copy(self, coinc, pipeline, psd, judge=False):
    """Upload one pipeline's copy, then its PSD as ``psd.xml.gz``.

    Parameters
    ----------
    coinc, psd : bytes
        The coinc.xml and psd.xml.gz.
    pipeline : str
        GraceDb pipeline name.
    judge : bool
        Whether to have :func:`advocate` judge this event's superevent
        later.

    Returns
    -------
    str
        The new event's graceid.
    """
    try:
        event = gracedb.create_event(coinc, 'MDC', pipeline, 'CBC',
                                     filename='coinc.xml')
    except Exception as exc:
        if gracedb.is_transient(exc):
            raise self.retry(exc=exc, countdown=gracedb.retry_delay(
                self.request.retries))
        raise
    graceid = event['graceid']
    # After the event, as pipelines do: its upload is what starts the
    # localization of an event whose coinc carries no PSD.
    gracedb.upload.delay(psd, 'psd.xml.gz', graceid,
                         'Noise PSD of the mock event', tags=['psd'])
    log.info('Mock event %s uploaded as %s', pipeline, graceid)
    if judge:
        advocate.apply_async(
            (graceid,), countdown=app.conf.mock_events_advocate_delay)
    return graceid


@app.task(bind=True, shared=False, ignore_result=True, max_retries=10,
          default_retry_delay=30)
def advocate(self, graceid):
    """Label the superevent of a mock event ``ADVOK`` or ``ADVNO``.

    Retried every 30 s while the event has no superevent yet.
    """
    event = gracedb.get_event(graceid)
    superevent_id = event.get('superevent')
    if not superevent_id:
        log.info('Mock event %s has no superevent yet; asking again later',
                 graceid)
        raise self.retry()
    ok = random.random() < app.conf.mock_events_advok_probability
    label = 'ADVOK' if ok else 'ADVNO'
    gracedb.create_label(label, superevent_id)
    log.info('Mock advocate: %s %s (via %s)', label, superevent_id, graceid)
    return label


@app.task(shared=False, ignore_result=True)
def replay_grb(gpstime):
    """Queue a Fermi GBM notice of a burst at gpstime for the local GCN
    feed (``gwcelery gcn feed``).

    Returns
    -------
    bytes
        The notice.
    """
    from ..vtp import feed
    template = resources.files('gwcelery.data').joinpath(
        GRB_TEMPLATE).read_bytes()
    notice = mock_events.grb_notice(template, gpstime)
    feed.enqueue(app.conf.broker_url, [notice])
    log.info('Mock GRB at GPS %.2f queued for the local GCN feed', gpstime)
    return notice


if app.conf.mock_events_enabled:
    app.add_periodic_task(app.conf.mock_events_period, upload_event.s(),
                          name='mock event stream')
