"""Coalesced batches give the result of handling alerts one by one.

Two local GraceDb servers receive the same random burst of uploads,
replacements and labels, through the real client; the superevent
manager's :func:`~gwcelery.tasks.superevents.apply_batch` then applies all
the alerts to one server in a single batch, and to the other one alert per
batch, in the same order. The superevents must come out the same, and the
batch must take fewer requests.
"""
import json
import random

import pytest

from gwcelery import app
from gwcelery.superevent_cache import NeighbourCache
from gwcelery.tasks import gracedb, superevents

from .fixtures.superevents import PIPELINES, coinc_xml, event_file

pytestmark = pytest.mark.slow

COMPLETE = ('PASTRO_READY', 'EMBRIGHT_READY', 'SKYMAP_READY')


def burst(rng, t):
    """Steps of a random burst: ``('upload', pipeline, gpstime, kwargs,
    group, search)``, ``('replace', n, far, snr)`` (n: the n-th upload) and
    ``('label', n, label)``."""
    # Candidates close enough to chain or bridge, and one on its own.
    centres = [t, t + 2.2, t + 4.1, t + 60]
    steps, uploads = [], 0
    for _ in range(36):
        roll = rng.random()
        if uploads > 3 and roll < 0.12:
            steps.append(('replace', rng.randrange(uploads),
                          rng.choice([1e-9, 1e-2]), rng.uniform(8, 30)))
            continue
        if uploads > 3 and roll < 0.2:
            steps.append(('label', rng.randrange(uploads),
                          rng.choice(COMPLETE + ('SKYMAP_READY',))))
            continue
        pipeline = rng.choice(list(PIPELINES))
        gpstime = rng.choice(centres) + rng.uniform(-0.9, 0.9)
        kwargs = {'far': rng.choice([1e-10, 1e-8, 1e-6, 1e-2])}
        if pipeline == 'cwb':
            kwargs['duration'] = rng.uniform(0.05, 0.6)
        elif pipeline == 'olib':
            kwargs.update(quality=rng.uniform(5, 30),
                          frequency=rng.uniform(40, 200))
        else:
            kwargs.update(snr=rng.uniform(8, 30), ifos=rng.choice(
                [('H1', 'L1'), ('H1', 'L1', 'V1')]))
        group = 'Test' if rng.random() < 0.1 else None
        search = 'MDC' if rng.random() < 0.1 else 'AllSky'
        steps.append(('upload', pipeline, gpstime, kwargs, group, search))
        uploads += 1
    # At least one event made complete and one CBC event revised.
    complete = rng.randrange(uploads)
    steps += [('label', complete, label) for label in COMPLETE]
    cbc = next(n for n, s in enumerate(
        s for s in steps if s[0] == 'upload') if s[1] not in ('cwb', 'olib'))
    steps.append(('replace', cbc, 1e-9, 40.0))
    return steps


def _alert(alert_type, event, data=None):
    return json.dumps({'uid': event['graceid'], 'alert_type': alert_type,
                       'data': data or event, 'object': event}).encode()


def carry_out(client, steps):
    """Make the burst on one server; return its alerts, in order."""
    alerts, ids = [], []
    for step in steps:
        if step[0] == 'upload':
            _, pipeline, gpstime, kwargs, group, search = step
            default_group, name = PIPELINES[pipeline]
            filename, data = event_file(pipeline, gpstime, **kwargs)
            event = client.create_event(
                group or default_group, name, filename, search=search,
                filecontents=data).json()
            ids.append((event['graceid'], pipeline, gpstime))
            alerts.append(_alert('new', event))
        elif step[0] == 'replace':
            _, n, far, snr = step
            graceid, pipeline, gpstime = ids[n]
            if pipeline in ('cwb', 'olib'):
                continue
            event = client.replace_event(
                graceid, 'coinc.xml',
                filecontents=coinc_xml(gpstime, far=far, snr=snr)).json()
            alerts.append(_alert('update', event))
        else:
            _, n, label = step
            graceid = ids[n][0]
            client.write_label(graceid, label)
            alerts.append(_alert('label_added', client.event(graceid).json(),
                                 {'name': label}))
    return alerts


def outcome(client, t):
    """The superevents near t, in a form that ignores their names."""
    found = []
    for s in client.superevents(query=f'{t - 500:.6f} .. {t + 500:.6f}'):
        found.append((s['category'], tuple(sorted(s['gw_events'])),
                      s['preferred_event'],
                      tuple(round(s[k], 5) for k in ('t_start', 't_0',
                                                      't_end'))))
    return sorted(found)


@pytest.mark.parametrize('seed', [1, 2, 3])
def test_one_batch_equals_one_by_one(start_gracedb, tmp_path, seed):
    from ligo.gracedb.rest import GraceDb
    rng = random.Random(seed)
    t = 1_300_000_000.0 + 1000 * seed
    steps = burst(rng, t)
    servers = [start_gracedb(database=f'sqlite:///{tmp_path}/{name}.sqlite')
               for name in ('batch', 'single')]
    clients = [GraceDb(service_url=s.url, force_noauth=True)
               for s in servers]
    previous = app.conf.gracedb_url
    try:
        alerts = [carry_out(c, steps) for c in clients]
        assert [json.loads(a)['uid'] for a in alerts[0]] == [
            json.loads(a)['uid'] for a in alerts[1]]
        requests = []
        for server, mode in zip(servers, ('batch', 'single')):
            app.conf.gracedb_url = server.url
            cache = NeighbourCache(60)
            before = gracedb.request_count()
            mine = alerts[servers.index(server)]
            if mode == 'batch':
                superevents.apply_batch(mine, cache)
            else:
                for alert in mine:
                    superevents.apply_batch([alert], cache)
            requests.append(gracedb.request_count() - before)
        batch, single = (outcome(c, t) for c in clients)
        # Something to compare: several superevents, from more than new
        # alerts.
        assert len(batch) >= 2
        assert {json.loads(a)['alert_type'] for a in alerts[0]} > {'new'}
        assert batch == single
        assert requests[0] < requests[1]
    finally:
        app.conf.gracedb_url = previous
        for client in clients:
            client.close()
