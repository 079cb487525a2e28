"""Reading and checking BAYESTAR's input (in this process: pure logic).

The localization itself, through a real openmp worker and compared with
``bayestar-localize-coincs``, is in tests/test_orchestrator.py.
"""
import gzip

import pytest

from gwcelery import app
from gwcelery.data import first2years
from gwcelery.tasks import bayestar

from .fixtures.skymaps import (bank_event, psd_for, single_detector,
                               with_embedded_psd)
from .fixtures.superevents import coinc_xml

ENTRIES = first2years.events()
GOOD = 'bns_hl_1'


@pytest.fixture(scope='module')
def good():
    _, coinc, psd = bank_event(GOOD)
    return coinc, psd


def test_reads_a_bank_event(good):
    event = bayestar.read_event(*good)
    assert sorted(single.detector for single in event.singles) == ['H1', 'L1']


def test_psd_may_be_uncompressed(good):
    coinc, psd = good
    event = bayestar.read_event(coinc, gzip.decompress(psd))
    assert all(single.psd is not None for single in event.singles)


@pytest.mark.parametrize('coinc, reason', [
    (b'', 'coinc.xml is empty'),
    (None, 'coinc.xml is empty'),
    (b'not xml at all', 'coinc.xml is not acceptable XML'),
    (b'<LIGO_LW><Table', 'coinc.xml is not acceptable XML'),
    (b'\x1f\x8b\x08\x00garbage', 'coinc.xml is (not valid|truncated) gzip'),
    (gzip.compress(b'<LIGO_LW/>')[:-8], 'coinc.xml is truncated gzip'),
    # The entity-expansion attack never reaches ligo.skymap's parser.
    (b'<?xml version="1.0"?><!DOCTYPE LIGO_LW [<!ENTITY a "aaaa">'
     b'<!ENTITY b "&a;&a;&a;&a;">]><LIGO_LW>&b;</LIGO_LW>',
     'internal DTD subset'),
    (coinc_xml(1_300_000_000.0), 'ligo.skymap cannot read coinc.xml'),
    (b'<LIGO_LW/>', 'ligo.skymap cannot read coinc.xml'),
])
def test_malformed_coinc(good, coinc, reason):
    with pytest.raises(bayestar.MalformedInputError, match=reason):
        bayestar.read_event(coinc, good[1])


def test_oversized_input_is_refused_before_parsing(good, monkeypatch):
    monkeypatch.setattr(bayestar, 'MAX_INPUT_BYTES', 1000)
    with pytest.raises(bayestar.MalformedInputError, match='larger than'):
        bayestar.read_event(good[0], good[1])


def test_gzip_bomb_is_refused(good, monkeypatch):
    # 10 MB of zeros in 10 kB: inflated only up to the limit.
    bomb = gzip.compress(b'\0' * 10_000_000)
    monkeypatch.setattr(bayestar, 'MAX_INPUT_BYTES', 1_000_000)
    with pytest.raises(bayestar.MalformedInputError, match='inflates to more'):
        bayestar.read_event(good[0], bomb)


def test_no_psd_anywhere(good):
    with pytest.raises(bayestar.MissingPSDError,
                       match='coinc.xml has no PSD for H1, L1'):
        bayestar.read_event(good[0])


def test_psd_of_one_detector_missing(good):
    coinc, psd = good
    with pytest.raises(bayestar.MissingPSDError,
                       match='psd.xml.gz has no PSD for L1'):
        bayestar.read_event(coinc, psd_for(psd, {'H1'}))


def test_empty_psd_file(good):
    with pytest.raises(bayestar.MalformedInputError, match='psd.xml.gz is empty'):
        bayestar.read_event(good[0], b'')


def test_embedded_psd(good):
    coinc = with_embedded_psd(*good)
    assert bayestar.carries_psd(coinc)
    assert not bayestar.carries_psd(good[0])
    event = bayestar.read_event(coinc)
    assert all(single.psd is not None for single in event.singles)


def test_single_detector(good):
    with pytest.raises(bayestar.SingleDetectorError, match='has H1$'):
        bayestar.read_event(single_detector(good[0]), good[1])


def test_disabled_detectors(good):
    with pytest.raises(bayestar.SingleDetectorError,
                       match='has L1 once H1 is left out'):
        bayestar.read_event(*good, disabled_detectors=['H1'])
    event = bayestar.read_event(*good, disabled_detectors=['V1'])
    assert len(event.singles) == 2


def test_errors_are_value_errors_with_one_message():
    # One string argument: they survive the JSON result backend as they are.
    error = bayestar.MissingPSDError('why')
    assert isinstance(error, ValueError) and error.args == ('why',)


@pytest.mark.parametrize('url, page', [
    ('http://127.0.0.1:8001/api/', 'http://127.0.0.1:8001/events/G7/view/'),
    ('https://gracedb.ligo.org/api', 'https://gracedb.ligo.org/events/G7/view/'),
])
def test_event_url(monkeypatch, url, page):
    monkeypatch.setitem(app.conf, 'gracedb_url', url)
    assert bayestar.event_url('G7') == page


def _template(entry, waveform):
    from ligo.skymap.bayestar import filter
    event = bayestar.read_event(first2years.read(entry['coinc']),
                                first2years.read(entry['psd']))
    return filter.sngl_inspiral_psd(waveform, f_min=30.0,
                                    **event.template_args)


@pytest.mark.parametrize('entry', ENTRIES, ids=lambda entry: entry['name'])
def test_configured_waveform_works_for_every_bank_event(entry):
    """The step of BAYESTAR that computes the template: a fraction of a
    second, instead of a whole localization."""
    assert len(_template(entry, app.conf.bayestar_waveform).data.data)


def test_default_waveform_trap():
    """Why the setting exists: ligo.skymap's default picks SEOBNRv4_ROM
    for a total mass of 4 M☉ or more, whose data this lalsuite lacks."""
    heavy = [e for e in ENTRIES if e['mass1'] + e['mass2'] >= 4]
    assert heavy
    with pytest.raises(RuntimeError):
        _template(heavy[0], 'o2-uberbank')
