"""The bank of simulated candidates in gwcelery.data.first2years."""
import importlib.metadata
import json
import subprocess
import sys
from importlib import resources
from io import BytesIO

import pytest
from ligo.skymap.io import events as skymap_events
from ligo.skymap.io.events.ligolw import LigoLWEventSource

from gwcelery.data import first2years
from gwcelery.data.first2years import make_bank
from gwcelery.localgracedb.eventfiles import read_event_file

ENTRIES = first2years.events()
FOLDER = resources.files('gwcelery.data.first2years')


def _event(entry):
    source = LigoLWEventSource(BytesIO(first2years.read(entry['coinc'])),
                               psd_file=BytesIO(first2years.read(entry['psd'])))
    event, = source.values()
    return event


@pytest.mark.parametrize('entry', ENTRIES, ids=lambda entry: entry['name'])
def test_event_reads_as_listed(entry):
    event = _event(entry)
    singles = sorted(event.singles, key=lambda single: single.detector)
    assert [single.detector for single in singles] == entry['instruments']
    for single in singles:
        assert single.snr == pytest.approx(entry['snr'][single.detector])
        assert 1 / single.snr_series.deltaT == entry['snr_sample_rate'] == 2048
        # The series' peak is the trigger, within a sample.
        series = single.snr_series
        peak = abs(series.data.data).argmax()
        assert float(series.epoch) + peak * series.deltaT == pytest.approx(
            single.time, abs=series.deltaT)
        assert single.psd.data.data.size > 0
    assert event.template_args['mass1'] == pytest.approx(entry['mass1'])
    assert event.template_args['mass2'] == pytest.approx(entry['mass2'])


@pytest.mark.parametrize('entry', ENTRIES, ids=lambda entry: entry['name'])
def test_event_reads_as_a_gracedb_upload(entry):
    fields = read_event_file(first2years.read(entry['coinc']))
    assert fields['far'] == entry['far']
    assert fields['gpstime'] == pytest.approx(entry['gpstime'], abs=1e-6)
    assert sorted(fields['instruments'].split(',')) == entry['instruments']
    coinc = fields['extra_attributes']['CoincInspiral']
    assert coinc['snr'] == pytest.approx(entry['network_snr'])


def test_coincs_carry_no_simulation():
    for entry in ENTRIES:
        coinc = first2years.read(entry['coinc'])
        assert b'sim_inspiral' not in coinc
        assert b'inspinj' not in coinc
        assert b'search_summary' not in coinc


def test_installed_files_found_by_path():
    """events.open on an installed coinc finds its PSD beside it."""
    entry = ENTRIES[0]
    with resources.as_file(FOLDER.joinpath(entry['coinc'])) as path:
        event, = skymap_events.open(str(path)).values()
        assert event.singles[0].psd.data.data.size > 0


def test_bank_composition():
    sources = [entry['source'] for entry in ENTRIES]
    assert set(sources) == {'BNS', 'NSBH', 'BBH'}
    networks = [tuple(entry['instruments']) for entry in ENTRIES]
    assert 2 <= networks.count(('H1', 'L1', 'V1')) <= 3
    assert networks.count(('H1', 'L1')) == len(ENTRIES) - networks.count(
        ('H1', 'L1', 'V1'))
    assert [entry['name'] for entry in ENTRIES] == [
        spec.name for spec in make_bank.BANK]
    for entry in ENTRIES:
        assert 10 <= entry['network_snr'] <= 25
        assert entry['publishable'] == (
            entry['far'] <= 1 / (60 * 86400) / 5)
        ranges = make_bank.SOURCES[entry['source']]
        low, high = ranges['mass1']
        assert low <= entry['mass1'] <= high
        low, high = ranges['mass2']
        assert low <= entry['mass2'] <= high
    publishable = [entry['publishable'] for entry in ENTRIES]
    assert 1 <= publishable.count(False) <= 2


def test_bank_is_small():
    names = [name for entry in ENTRIES for name in (entry['coinc'], entry['psd'])]
    assert sum(len(first2years.read(name)) for name in names) < 1_000_000


@pytest.mark.parametrize('name', ['bank.json', '__init__.py', '../__init__.py',
                                  '/etc/passwd', 'missing.coinc.xml'])
def test_read_refuses_other_files(name):
    with pytest.raises(KeyError):
        first2years.read(name)


def test_events_returns_copies():
    first2years.events()[0]['far'] = 1.0
    assert first2years.events()[0]['far'] == ENTRIES[0]['far']


@pytest.mark.slow
def test_regenerates_one_event_byte_for_byte(tmp_path):
    manifest = json.loads(FOLDER.joinpath('bank.json').read_text())
    installed = {name: importlib.metadata.version(name)
                 for name in manifest['versions']}
    if installed != manifest['versions']:
        pytest.skip(f'the bank was made with {manifest["versions"]}, '
                    f'not {installed}: regenerate it')
    entry = next(entry for entry in ENTRIES if entry['name'] == 'bns_hl_1')
    subprocess.run(
        [sys.executable, '-m', 'gwcelery.data.first2years.make_bank',
         '--output', str(tmp_path), entry['name']],
        check=True, capture_output=True, timeout=120)
    for name in (entry['coinc'], entry['psd']):
        assert (tmp_path / name).read_bytes() == first2years.read(name), name
    made = json.loads((tmp_path / 'bank.json').read_text())
    assert made['events'] == [entry]
    assert made['versions'] == manifest['versions']


@pytest.mark.slow
def test_localization_contains_the_injection():
    """BAYESTAR with the listed waveform puts the truth inside its 90 % area."""
    from astropy.coordinates import SkyCoord
    from ligo.skymap.bayestar import localize
    from ligo.skymap.postprocess.crossmatch import crossmatch

    entry = next(entry for entry in ENTRIES if entry['name'] == 'nsbh_hl_1')
    skymap = localize(_event(entry), waveform=entry['waveform'],
                      f_low=entry['f_low'])
    truth = entry['injection']
    result = crossmatch(skymap, SkyCoord(truth['ra'], truth['dec'], unit='deg'))
    assert result.searched_prob < 0.9
