"""The local GraceDb's LVAlert sender: messages wait, in order, while the
LVAlert server cannot be reached, and are dropped (with an error) only when
it refuses them or stays away too long. The publisher is a stand-in whose
failures the test chooses; the sender's thread is real."""
import logging
import threading

import pytest

from gwcelery.localgracedb.alerts import AlertSender
from gwcelery.util.waiting import wait_for


class Publisher:
    """Fails with ``error`` while ``down`` is set; records what it got."""

    def __init__(self, error=ConnectionError('Connection refused')):
        self.error = error
        self.down = threading.Event()
        self.got = []
        self.attempts = 0

    def publish(self, node, message):
        self.attempts += 1
        if self.down.is_set():
            raise self.error
        self.got.append((node, message['uid']))

    def close(self):
        pass


@pytest.fixture
def sender():
    senders = []

    def start(publisher, **options):
        senders.append(AlertSender(publisher, retry_interval=0.05,
                                   **options))
        return senders[-1]

    yield start
    for s in senders:
        s.close()


def _send(sender, uids):
    for uid in uids:
        sender.send('cbc_gstlal', uid, 'new', {}, {})


def test_messages_wait_in_order_while_the_server_is_away(sender, caplog):
    caplog.set_level(logging.INFO)
    publisher = Publisher()
    s = sender(publisher)
    _send(s, ['G1'])
    wait_for(lambda: publisher.got, what='the first message')
    publisher.down.set()
    _send(s, ['G2', 'G3', 'G4'])
    wait_for(lambda: publisher.attempts >= 5, what='attempts while down')
    assert publisher.got == [('cbc_gstlal', 'G1')]
    publisher.down.clear()
    wait_for(lambda: len(publisher.got) == 4, what='the held messages')
    assert [uid for _, uid in publisher.got] == ['G1', 'G2', 'G3', 'G4']
    assert (s.sent, s.failed, s.held) == (4, 0, 1)
    text = caplog.text
    assert text.count('Could not publish LVAlert new for G2 on node '
                      'cbc_gstlal: ConnectionError') == 1
    assert 'holding it and the 2 messages behind it' in text
    assert 'LVAlert publishing resumed: new for G2' in text
    assert 'dropping' not in text


def test_redis_connection_errors_are_held_too(sender):
    import redis
    publisher = Publisher(redis.exceptions.ConnectionError('refused'))
    publisher.down.set()
    s = sender(publisher)
    _send(s, ['G1'])
    wait_for(lambda: publisher.attempts >= 3, what='three attempts')
    publisher.down.clear()
    wait_for(lambda: publisher.got, what='the held message')
    assert (s.sent, s.failed) == (1, 0)


def test_a_refused_message_is_dropped_at_once(sender, caplog):
    publisher = Publisher(RuntimeError('not-authorized'))
    publisher.down.set()
    s = sender(publisher)
    _send(s, ['G1'])
    wait_for(lambda: s.failed, what='the drop')
    assert publisher.attempts == 1
    assert 'Could not publish LVAlert new for G1 on node cbc_gstlal: ' \
        'RuntimeError: not-authorized; dropping it' in caplog.text
    publisher.down.clear()
    _send(s, ['G2'])
    wait_for(lambda: publisher.got, what='the next message')
    assert publisher.got == [('cbc_gstlal', 'G2')]


def test_a_server_away_too_long_costs_the_held_message(sender, caplog):
    publisher = Publisher(TimeoutError('no answer'))
    publisher.down.set()
    s = sender(publisher, max_hold=0.3)
    _send(s, ['G1', 'G2'])
    wait_for(lambda: s.failed == 2, what='both dropped')
    assert publisher.got == []
    assert 'G1 on node cbc_gstlal: TimeoutError: no answer; dropping it ' \
        'after holding it for 0 s' in caplog.text
