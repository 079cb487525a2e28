"""Latency timelines: stages in Redis, timeline.json in GraceDb, the table.

Recording and writing run against the test Redis and the session's local
GraceDb; the writer task is called in this process, from many threads at
once, to check that concurrent writers lose no stage.
"""
import json
import threading
import uuid

import pytest

from gwcelery import timeline
from gwcelery.tasks import timeline as timeline_tasks

from .fixtures.products import upload_cbc


def test_first_record_of_a_stage_wins(redis_client):
    assert timeline.record('S1', 'created', 'first', when=10.0)
    assert not timeline.record('S1', 'created', 'second', when=20.0)
    assert timeline.stages('S1') == {
        'created': {'time': 10.0, 'detail': 'first'}}
    assert timeline.revision('S1') == '1'
    timeline.record('S1', 'alert_received', when=11.0)
    assert timeline.revision('S1') == '2'


def test_event_alert_is_recorded_with_graceDb_upload_time(redis_client):
    timeline.record_event_alert({'uid': 'G7', 'object': {
        'created': '2026-01-02 03:04:05 UTC'}})
    stages = timeline.stages('G7')
    assert stages['uploaded']['time'] == 1767323045.0
    assert stages['alert_received']['time'] >= stages['uploaded']['time']


def test_parse_gracedb_time():
    assert timeline.parse_gracedb_time('1970-01-01 00:01:00 UTC') == 60.0
    for text in (None, '', '2026-01-02T03:04:05Z', 'yesterday'):
        assert timeline.parse_gracedb_time(text) is None


def test_document_and_rows():
    doc = timeline.document('S1', {
        'alert_received': {'time': 101.0, 'detail': ''},
        'preliminary-1/preferred_event': {'time': 102.5, 'detail': 'G1'},
        'preliminary-1/acked/127.0.0.1:99': {'time': 103.0, 'detail': ''},
        'broken': {'time': 'soon', 'detail': ''},
    }, {'G1': {'uploaded': {'time': 100.0, 'detail': ''}}})
    assert [(e['object'], e['notice'], e['stage'], e['subscriber'])
            for e in doc['stages']] == [
        ('G1', None, 'uploaded', None), ('S1', None, 'alert_received', None),
        ('S1', 'preliminary-1', 'preferred_event', None),
        ('S1', 'preliminary-1', 'acked', '127.0.0.1:99')]
    rows = timeline.rows(doc)
    assert [r['description'] for r in rows] == [
        'G1: event uploaded (GraceDb, to the second)',
        'S1: superevent alert received',
        'preliminary-1: preferred event taken',
        'preliminary-1: acknowledged by 127.0.0.1:99']
    assert [r['since_start'] for r in rows] == [0.0, 1.0, 2.5, 3.0]
    assert [r['since_previous'] for r in rows] == [0.0, 1.0, 1.5, 0.5]
    assert rows[0]['utc'] == '1970-01-01 00:01:40.000'
    text = timeline.table(doc)
    assert text.splitlines()[0].startswith('stage')
    assert 'preliminary-1: preferred event taken' in text
    assert '    2.500     1.500  G1' in text


@pytest.mark.parametrize('doc', [None, {}, {'stages': None},
                                 {'stages': [1, {'time': 1.0}, 'x']}])
def test_rows_of_malformed_documents_are_empty(doc):
    assert timeline.rows(doc) == []


def _superevent(gracedb):
    event = upload_cbc(gracedb)
    t_0 = event['gpstime']
    return gracedb.create_superevent(
        t_0 - 1, t_0, t_0 + 1, event['graceid']).json()['superevent_id']


def _written(gracedb, sid):
    doc = json.loads(gracedb.files(sid, timeline.FILENAME).read())
    return sorted(e['stage'] for e in doc['stages'])


def _write(sid):
    timeline_tasks.write.apply((sid,), task_id=str(uuid.uuid4()))


def test_stage_recorded_during_a_write_is_written(redis_client, gracedb,
                                                  monkeypatch):
    """A stage recorded while a writer uploads: its own writer finds the
    first at work and leaves, and the first writes again."""
    sid = _superevent(gracedb)
    timeline.record(sid, 'first')
    uploading, go_on = threading.Event(), threading.Event()
    assemble = timeline.assemble

    def slow_assemble(superevent_id):
        # The first writer's snapshot is taken; its upload is slow.
        doc = assemble(superevent_id)
        if not uploading.is_set():
            uploading.set()
            assert go_on.wait(30)
        return doc

    monkeypatch.setattr(timeline, 'assemble', slow_assemble)
    writer = threading.Thread(target=_write, args=(sid,))
    writer.start()
    assert uploading.wait(30)
    timeline.record(sid, 'second')
    _write(sid)  # finds the first writer at work: leaves at once
    go_on.set()
    writer.join()
    assert _written(gracedb, sid) == ['first', 'second']


def test_concurrent_writers_lose_no_stage(redis_client, gracedb):
    """Eight threads record stages, each followed by a writer as
    :func:`gwcelery.tasks.timeline.note` sends one: the last timeline.json
    holds every stage."""
    sid = _superevent(gracedb)
    names = [f'stage{i}' for i in range(40)]
    barrier = threading.Barrier(8)

    def record(chunk):
        barrier.wait()
        for name in chunk:
            timeline.record(sid, name)
            _write(sid)

    threads = [threading.Thread(target=record, args=(names[i::8],))
               for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert _written(gracedb, sid) == sorted(names)


def test_a_snapshot_already_uploaded_is_not_uploaded_again(
        redis_client, gracedb, monkeypatch):
    """A stage recorded after the writer read the revision and before its
    snapshot: the snapshot holds it, the revision moved, and the writer's
    next round finds the same document: one version, not two alike."""
    sid = _superevent(gracedb)
    timeline.record(sid, 'first')
    revision = timeline.revision
    recorded = []

    def revision_then_a_stage(superevent_id):
        seen = revision(superevent_id)
        if not recorded:
            recorded.append(timeline.record(sid, 'second'))
        return seen

    monkeypatch.setattr(timeline, 'revision', revision_then_a_stage)
    _write(sid)
    assert recorded == [True]
    assert _written(gracedb, sid) == ['first', 'second']
    versions = [entry for entry in gracedb.logs(sid).json()['log']
                if entry['filename'] == timeline.FILENAME]
    assert len(versions) == 1, versions
