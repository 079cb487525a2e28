"""Faults of the services around the superevent manager, over real processes.

Two scenarios, each with a stream of uploads (clusters of events from
several pipelines, each cluster at a fresh time, so that each makes one
superevent) that goes on through the fault:

* the XMPP server restarts: the local GraceDb publishes its LVAlerts on a
  real prosody, which is stopped for a few seconds and started again; the
  reconciliation runs every second and brings back what XMPP lost;
* GraceDb answers 503 to every request of the superevent worker for a
  minute (through a :class:`~tests.fixtures.gracedb.FaultyProxy`), with the
  reconciliation off, so that only the intake and the retries can keep the
  alerts.

At the end every eligible event is in exactly one superevent, as GraceDb
sees it, each cluster has one superevent, and no event is in two.
"""
import re
import threading
import time

import pytest

from gwcelery.lvalert import transport
from gwcelery.superevent_intake import PENDING_KEY
from gwcelery.util.waiting import wait_for

from .fixtures.gracedb import LocalGraceDb
from .fixtures.lvalert import PUBLISHER
from .fixtures.stack import run_stack
from .fixtures.superevents import SupereventStack, fresh_time

pytestmark = pytest.mark.slow

#: Pipelines of the events of a cluster, taking turns.
PIPELINE_SETS = (('gstlal', 'pycbc', 'cwb'), ('spiir', 'mbtaonline', 'olib'))

#: A reconciliation every second for events created 10 s to 10 min ago:
#: an alert that XMPP only delays (the local GraceDb's publisher waits for
#: the server to come back) is not taken for a lost one.
RECONCILE_ENV = {'GWCELERY_TEST_RECONCILE_INTERVAL': '1',
                 'GWCELERY_TEST_RECONCILE_MIN_AGE': '10',
                 'GWCELERY_TEST_RECONCILE_LOOKBACK': '600'}

_RECONCILED = re.compile(r'Event (\S+) \(created [^)]*\) should be in a '
                         r'superevent but is not')


class UploadStream:
    """The pipelines' side: clusters of events uploaded at a steady rate.

    Each cluster has a fresh time and one event of each pipeline of a set
    in :data:`PIPELINE_SETS`, 50 ms apart; in every fourth cluster the last
    event has a FAR above the threshold (not eligible).
    """

    def __init__(self, stack):
        self.stack = stack
        self.clusters = []  # [(gpstime, [(graceid, eligible, uploaded)])]
        self.slowest = 0.0  # the longest upload (s)

    def _events(self):
        while True:
            n = len(self.clusters)
            t = fresh_time()
            events = []
            self.clusters.append((t, events))
            pipelines = PIPELINE_SETS[n % len(PIPELINE_SETS)]
            for i, pipeline in enumerate(pipelines):
                eligible = not (n % 4 == 3 and i == len(pipelines) - 1)
                yield events, pipeline, t + 0.05 * i, eligible

    def run(self, seconds, per_second):
        """Upload for ``seconds`` at ``per_second`` events a second, whole
        clusters only."""
        start = time.monotonic()
        step = 1.0 / per_second
        for k, (events, pipeline, t, eligible) in enumerate(self._events()):
            began = time.monotonic()
            if began - start >= seconds and not events:
                self.clusters.pop()  # a cluster not begun
                return
            graceid = self.stack.upload(
                pipeline, t, far=1e-10 if eligible else 1e-2)
            done = time.monotonic()
            self.slowest = max(self.slowest, done - began)
            events.append((graceid, eligible, done))
            # Pacing, not waiting for a condition.
            time.sleep(max(0.0, start + (k + 1) * step - time.monotonic()))

    def eligible(self):
        return [g for _, events in self.clusters
                for g, eligible, _ in events if eligible]

    def uploaded_between(self, start, end):
        return [g for _, events in self.clusters
                for g, eligible, done in events
                if eligible and start <= done <= end]


def _all_superevents(stack, clusters):
    first, last = clusters[0][0], clusters[-1][0]
    return list(stack.client.superevents(
        query=f'{first - 60:.6f} .. {last + 60:.6f}'))


def _grouped(stack, clusters):
    """Whether each cluster has one superevent holding exactly its
    eligible events (what a settled manager shows)."""
    for t, events in clusters:
        found = stack.superevents(t)
        wanted = {g for g, eligible, _ in events if eligible}
        if len(found) != 1 or set(found[0]['gw_events']) != wanted:
            return False
    return True


def _wait_grouped(stack, clusters, timeout):
    wait_for(lambda: _grouped(stack, clusters), timeout=timeout,
             interval=0.5, what='every cluster in its one superevent')


def check_every_event_in_one_superevent(stack, stream):
    """GraceDb's view: one superevent per cluster, each eligible event in
    exactly one superevent and pointing at it, no ineligible one in any."""
    superevents = _all_superevents(stack, stream.clusters)
    assert len(superevents) == len(stream.clusters), [
        (s['superevent_id'], s['gw_events']) for s in superevents]
    owner = {}
    for s in superevents:
        for graceid in s['gw_events']:
            assert graceid not in owner, (
                f'{graceid} in {owner.get(graceid)} and '
                f'{s["superevent_id"]}')
            owner[graceid] = s['superevent_id']
    for t, events in stream.clusters:
        (s,) = stack.superevents(t)
        for graceid, eligible, _ in events:
            event = stack.event(graceid)
            if eligible:
                assert owner[graceid] == s['superevent_id']
                assert event['superevent'] == s['superevent_id']
            else:
                assert graceid not in owner
                assert event['superevent'] is None


_DELIVERED = re.compile(r'LVAlert item \S+ on node \S+: new (\S+)')


def reconciled(stack):
    """Events the reconciliation handed over, from its warnings."""
    return set(_RECONCILED.findall(stack.general_log()))


def delivered(stack):
    """Events whose ``new`` alert the LVAlert listener delivered."""
    return set(_DELIVERED.findall(stack.general_log()))


# -- XMPP server restart -------------------------------------------------------

class XMPPSupereventStack(SupereventStack):
    """The superevent stack on a local GraceDb of its own that publishes on
    a prosody, whose listener reads that prosody."""

    def listening(self):
        # At its first session, the listener subscribes to every node and
        # notes the items already there, node by node.
        log = self.general_log()
        return 'LVAlert session 1 started' in log and all(
            f'LVAlert node {node}:' in log for node in self.nodes)


@pytest.fixture
def xmpp_stack(prosody, redis_url, gracedb_server, tmp_path):
    from gwcelery.tasks.superevents import NODES
    # The nodes exist before anyone listens, as on a production server.
    with transport.from_url(prosody.url, username=PUBLISHER[0],
                            password=PUBLISHER[1]) as publisher:
        for node in NODES:
            publisher.create_node(node)
    netrc = tmp_path / 'publisher-netrc'
    netrc.write_text(f'machine {prosody.host} login {PUBLISHER[0]} '
                     f'password {PUBLISHER[1]}\n')
    netrc.chmod(0o600)
    gracedb = LocalGraceDb(tmp_path, lvalert_url=prosody.url,
                           env={'NETRC': str(netrc)}).start()

    class Stack(XMPPSupereventStack):
        def __init__(self, folder, redis_url, _):
            super().__init__(folder, redis_url, gracedb.url)
            self.gracedb = gracedb

    try:
        yield from run_stack(Stack, redis_url, gracedb_server, tmp_path, env={
            'GWCELERY_TEST_GRACEDB_URL': gracedb.url,
            'GWCELERY_TEST_LVALERT_URL': prosody.url,
            'NETRC': str(prosody.netrc), **RECONCILE_ENV})
    finally:
        gracedb.stop()


def test_xmpp_server_restart_leaves_every_event_in_one_superevent(
        xmpp_stack, prosody):
    stack = xmpp_stack
    stream = UploadStream(stack)
    restart = {}

    def restart_prosody():
        # Some seconds into the stream; the server stays down a few.
        wait_for(lambda: len(stream.clusters) >= 5, timeout=60,
                 what='the stream to get going')
        restart['stopped'] = time.monotonic()
        prosody.stop()
        # The outage lasts until the publisher has noticed it and the
        # stream has uploaded three clusters into it (about 4.5 s).
        during = len(stream.clusters)
        wait_for(lambda: 'LVAlert publisher disconnected' in
                 stack.gracedb.log() and len(stream.clusters) >= during + 3,
                 timeout=60, what='uploads during the outage')
        prosody.start()
        restart['started'] = time.monotonic()
        wait_for(lambda: 'LVAlert session 2 started' in stack.general_log(),
                 timeout=60, what='the listener to reconnect')
        restart['listener'] = time.monotonic()

    thread = threading.Thread(target=restart_prosody)
    thread.start()
    try:
        stream.run(seconds=30, per_second=2)
    finally:
        thread.join(60)
    ended = time.monotonic()
    assert restart.get('listener'), 'no restart, or no reconnection'
    _wait_grouped(stack, stream.clusters, timeout=90)
    settled = time.monotonic()
    check_every_event_in_one_superevent(stack, stream)

    # An upload never waits for LVAlert.
    assert stream.slowest < 5.0, stream.slowest
    # The local GraceDb's publisher saw the server go and come back, and
    # dropped nothing.
    log = stack.gracedb.log()
    assert 'LVAlert publisher disconnected' in log
    assert 'LVAlert publisher connected again' in log
    assert 'dropping' not in log
    # The accounts balance: an event whose alert never reached the listener
    # was handed over by the reconciliation; one handed over and delivered
    # too was late (its alert waited for the listener to reconnect), and
    # the manager took it once.
    eligible = set(stream.eligible())
    brought_back = reconciled(stack)
    lost = eligible - delivered(stack)
    assert brought_back <= eligible, brought_back - eligible
    assert lost <= brought_back, lost - brought_back
    # Events uploaded well before the server stopped had their alerts.
    early = set(stream.uploaded_between(0, restart['stopped'] - 5))
    assert not brought_back & early, brought_back & early
    away = re.search(r'connected again as \S+ after ([\d.]+) s away', log)
    print(f'\n{len(eligible)} eligible events in {len(stream.clusters)} '
          f'clusters; XMPP down {restart["started"] - restart["stopped"]:.1f}'
          f' s; {len(brought_back)} events handed over by the '
          f'reconciliation ({sorted(brought_back)}), of which {len(lost)} '
          f'never came by LVAlert ({sorted(lost)}); all grouped '
          f'{settled - ended:.1f} s after the last upload; slowest upload '
          f'{stream.slowest:.2f} s; the listener reconnected '
          f'{restart["listener"] - restart["started"]:.1f} s after the '
          f'server was back, the publisher after {away[1]} s away')


# -- GraceDb outage --------------------------------------------------------------

class ProxiedSupereventStack(SupereventStack):
    """The superevent stack whose superevent worker reaches GraceDb through
    a :class:`~tests.fixtures.gracedb.FaultyProxy` (the pipelines and the
    listener, whose alerts must point at the GraceDb it knows, do not)."""

    proxy = None

    def start_superevent_worker(self, env=None):
        return super().start_superevent_worker(env={
            'GWCELERY_TEST_GRACEDB_URL': self.proxy.url, **(env or {})})


@pytest.fixture
def proxied_stack(redis_url, gracedb_server, faulty_proxy, tmp_path):
    proxy = faulty_proxy(gracedb_server.url)

    class Stack(ProxiedSupereventStack):
        pass

    Stack.proxy = proxy
    yield from run_stack(Stack, redis_url, gracedb_server, tmp_path)


def test_gracedb_outage_loses_no_event(proxied_stack):
    stack = proxied_stack
    proxy = stack.proxy
    # The chain works before the outage.
    warm = UploadStream(stack)
    warm.run(seconds=0.1, per_second=10)
    _wait_grouped(stack, warm.clusters, timeout=60)

    stream = UploadStream(stack)
    outage = 60.0
    healed = proxy.fail_for(outage)
    stream.run(seconds=outage - 5, per_second=2)
    # Shortly before the end of the outage: nothing applied, everything
    # kept in the intake.
    during = stream.eligible()
    assert time.monotonic() < healed, 'the stream outlasted the outage'
    assert stack.redis.llen(PENDING_KEY) >= len(during)
    for t, _ in stream.clusters:
        assert stack.superevents(t) == []
    assert proxy.failed > 0
    wait_for(lambda: time.monotonic() >= healed, timeout=outage,
             what='the outage to end')
    _wait_grouped(stack, stream.clusters, timeout=90)
    delay = time.monotonic() - healed
    check_every_event_in_one_superevent(stack, stream)
    assert 'GraceDb failed while handling' in stack.worker_log()
    assert not stack.redis.llen(PENDING_KEY)
    print(f'\n{len(during)} eligible events in {len(stream.clusters)} '
          f'clusters uploaded during a {outage:.0f} s outage '
          f'({proxy.failed} requests answered 503); all grouped '
          f'{delay:.1f} s after GraceDb came back')
