"""Keeping each superevent's latency timeline in GraceDb.

:func:`note` records a stage of a superevent (:func:`gwcelery.timeline.record`)
and, if it is new, sends :func:`write`, which rewrites the superevent's
``timeline.json`` (a new version of the file, in a log entry) from what
Redis holds: the superevent's stages and those of the events its notices
used (named in the ``<notice>/preferred_event`` stages).

A writer starts :data:`DELAY` seconds after the stage that sent it, so
that the stages of a burst go into one version, and writes nothing if the
revision it would write is the one written last.

Concurrent writers lose no stage. One writer at a time holds a claim (a
Redis key with a lease, under its task id: :mod:`gwcelery.claims`); a
writer that finds it taken leaves, since the holder will write again:
after each upload the holder gives the claim up only if the revision it
read before (:func:`gwcelery.timeline.revision`) is still the current one,
in one Redis step (:func:`gwcelery.claims.release_if_unchanged`), and
otherwise writes again. A stage recorded after that sends a writer of its
own, which finds the claim free. A writer killed while holding it comes
back (acknowledged late) with its task id and takes it again; another
finds it free once the lease has passed.
"""
import hashlib
import json
import logging

from .. import app, claims, timeline
from ..claims import redis_client
from . import gracedb

__all__ = ('note', 'write', 'LEASE', 'DELAY')

log = logging.getLogger(__name__)

#: Seconds a writer holds the lock before another may take it.
LEASE = 60.0

#: Seconds between a new stage and the writer it sends.
DELAY = 1.0

_WRITTEN = 'gwcelery:timeline-written:'

# SHA-256 of the last timeline.json uploaded, per superevent.
_DIGEST = 'gwcelery:timeline-digest:'

#: Name of the writer's claim (:mod:`gwcelery.claims`).
_WRITER = 'timeline-writer'


def note(superevent_id, stage, detail='', when=None):
    """Record a stage of a superevent and have ``timeline.json`` rewritten
    if it is new; return whether it was."""
    new = timeline.record(superevent_id, stage, detail, when)
    if new:
        write.apply_async((superevent_id,), countdown=DELAY)
    return new


def _upload(superevent_id, client):
    """Upload the timeline as it stands, unless its stages are exactly
    those of the last version uploaded: a stage recorded between the
    writer's reading of the revision and its snapshot is in the snapshot
    already, and the writer's next round would otherwise upload the same
    stages again."""
    doc = timeline.assemble(superevent_id)
    # The stages, not the document, whose "written" time always differs.
    digest = hashlib.sha256(json.dumps(
        doc['stages'], sort_keys=True).encode()).hexdigest()
    last = client.get(_DIGEST + superevent_id)
    if last is not None and last.decode() == digest:
        return
    gracedb.upload(json.dumps(doc, indent=1).encode(), timeline.FILENAME,
                   superevent_id,
                   f'Latency timeline ({len(doc["stages"])} stages)')
    client.set(_DIGEST + superevent_id, digest, ex=timeline.TTL)


@app.task(bind=True, shared=False, acks_late=True, reject_on_worker_lost=True,
          ignore_result=True, max_retries=None)
def write(self, superevent_id):
    """Rewrite a superevent's ``timeline.json`` until it holds every stage
    recorded so far (see the module's documentation)."""
    client = redis_client()
    revision_key = timeline.revision_key(superevent_id)
    owner = self.request.id
    if claims.claim(superevent_id, _WRITER, owner, LEASE).state != 'mine':
        log.debug('%s: another task is writing the timeline', superevent_id)
        return
    while True:
        seen = timeline.revision(superevent_id)
        written = client.get(_WRITTEN + superevent_id)
        if written is None or written.decode() != seen:
            try:
                _upload(superevent_id, client)
            except Exception as exc:
                if gracedb.is_transient(exc):
                    # Keep the claim: the retry has this task's id.
                    raise self.retry(exc=exc, countdown=gracedb.retry_delay(
                        self.request.retries))
                claims.release(superevent_id, _WRITER, owner)
                log.error('%s: cannot write %s: %s: %s', superevent_id,
                          timeline.FILENAME, type(exc).__name__, exc)
                return
            client.set(_WRITTEN + superevent_id, seen, ex=timeline.TTL)
        if claims.release_if_unchanged(superevent_id, _WRITER, owner,
                                       revision_key, seen):
            return
