"""The one back-off of everything retried because GraceDb failed: the
GraceDb tasks and the superevent manager."""
import types

import pytest

from gwcelery import app
from gwcelery.tasks import gracedb


def _conf(base, ceiling):
    return types.SimpleNamespace(gracedb_retry_backoff=base,
                                 gracedb_retry_backoff_max=ceiling)


@pytest.mark.parametrize('retries, low, high', [
    (0, 0.5, 1.0), (1, 1.0, 2.0), (2, 2.0, 4.0), (5, 16.0, 32.0),
    (6, 30.0, 60.0), (7, 30.0, 60.0), (1000, 30.0, 60.0), (None, 0.5, 1.0),
])
def test_delay_doubles_up_to_the_ceiling_with_jitter(retries, low, high):
    conf = _conf(1.0, 60.0)
    delays = [gracedb.retry_delay(retries, conf) for _ in range(200)]
    assert all(low <= d <= high for d in delays)
    # Jittered: not all the same.
    assert len(set(delays)) > 1


def test_delay_follows_the_settings():
    conf = app.conf
    old = conf.gracedb_retry_backoff, conf.gracedb_retry_backoff_max
    conf.gracedb_retry_backoff, conf.gracedb_retry_backoff_max = 0.01, 0.03
    try:
        assert 0.005 <= gracedb.retry_delay(0) <= 0.01
        assert 0.015 <= gracedb.retry_delay(9) <= 0.03
        # The GraceDb tasks use it.
        assert 0.015 <= gracedb.get_event.backoff(9) <= 0.03
    finally:
        conf.gracedb_retry_backoff, conf.gracedb_retry_backoff_max = old
