"""The GCN echo check's refusals, before it asks GraceDb anything (the
checks themselves run in tests/test_alerts.py, through real processes)."""
import logging

import pytest

from gwcelery.tasks import gcn

from .fixtures.gcn import DATA

_VOE = 'xmlns:voe="http://www.ivoa.net/xml/VOEvent/v2.0"'


@pytest.mark.parametrize('payload, message', [
    (b'<voe:VOEvent ' + _VOE.encode() + b'><What/></voe:VOEvent>',
     'VOEvent has no ivorn'),
    (b'<!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>',
     'internal DTD subset'),
    (b'not xml', 'Cannot check an LVC notice of 7 bytes'),
])
def test_unreadable_notice_is_logged(caplog, payload, message):
    with caplog.at_level(logging.ERROR, logger='gwcelery.tasks.gcn'):
        assert gcn.check_echo.apply((payload,)).get() is None
    assert message in caplog.text


def test_notice_about_an_event_is_not_checked(caplog):
    """The shared LVC sample names an event (G298048), not a superevent."""
    payload = (DATA / 'G298048-1-Initial.xml').read_bytes()
    with caplog.at_level(logging.INFO, logger='gwcelery.tasks.gcn'):
        gcn.check_echo.apply((payload,)).get()
    assert 'is not about a superevent: no echo check' in caplog.text


@pytest.mark.parametrize('graceid, ours', [
    ('S190425z', True), ('MS190425ab', True), ('TS190425a', True),
    ('GW190425', True), ('MGW190425b', True), ('G298048', False),
    ('M1234', False), ('S19042', False), ('', False)])
def test_superevent_ids(graceid, ours):
    assert bool(gcn._SUPEREVENT_ID.match(graceid)) is ours
