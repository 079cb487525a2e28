"""Mock events from the bank: moved to now, copied, and a burst beside them
(gwcelery.mock_events), read back as BAYESTAR and GraceDb read them."""
import random
from io import BytesIO

import pytest
from astropy.time import Time
from ligo.skymap.io.events.ligolw import LigoLWEventSource

from gwcelery import mock_events
from gwcelery.data import first2years
from gwcelery.tasks.first2years import GRB_TEMPLATE, gps_now
from gwcelery.util.xml import parse
from gwcelery.vtp.parsing import get_notice_type

BANK = first2years.events()


def source(coinc, entry):
    return LigoLWEventSource(BytesIO(coinc),
                             psd_file=BytesIO(first2years.read(entry['psd'])))


def single_times(event):
    return {ifo: float(single.time) for ifo, single in
            zip((s.detector for s in event.singles), event.singles)}


@pytest.mark.parametrize('entry', BANK[:1] + BANK[2:3], ids=lambda e: e['name'])
def test_shift_to_now_keeps_geometry(entry):
    original = first2years.read(entry['coinc'])
    event, = source(original, entry).values()
    before = single_times(event)

    doc = mock_events.load(original)
    now = gps_now()
    seconds = mock_events.shift(doc, now)
    shifted = mock_events.dump(doc)
    assert seconds > 0
    days = seconds / mock_events.SIDEREAL_DAY
    assert abs(days - round(days)) < 1e-9

    moved, = source(shifted, entry).values()
    after = single_times(moved)
    assert set(after) == set(before) == set(entry['instruments'])
    t = mock_events.event_time(mock_events.load(shifted))
    assert now - mock_events.SIDEREAL_DAY < t <= now
    for ifo in before:
        assert after[ifo] - before[ifo] == pytest.approx(seconds, abs=1e-6)
    # Delays between detectors unchanged to the nanosecond (read as GPS
    # times: a float at 1.5e9 s resolves only 0.24 us).
    def delays(coinc):
        from igwn_ligolw import lsctables
        rows = lsctables.SnglInspiralTable.get_table(mock_events.load(coinc))
        return [float(row.end - rows[0].end) for row in rows]
    for a, b in zip(delays(original), delays(shifted)):
        assert b == pytest.approx(a, abs=2e-9)
    # The SNR series moved with the triggers; SNRs and templates did not.
    for a, b in zip(event.singles, moved.singles):
        assert b.snr == pytest.approx(a.snr)
        assert float(b.snr_series.epoch) - float(a.snr_series.epoch) \
            == pytest.approx(seconds, abs=1e-6)
        assert (b.snr_series.data.data == a.snr_series.data.data).all()
    assert moved.template_args == event.template_args
    assert mock_events.psd_name(doc) == entry['psd']


def test_near_copy_is_a_slightly_different_upload():
    entry = BANK[0]
    doc = mock_events.load(first2years.read(entry['coinc']))
    mock_events.shift(doc, gps_now())
    first = mock_events.dump(doc)
    base, = source(first, entry).values()
    rng = random.Random(1)
    copies = []
    for _ in range(5):
        copy = mock_events.load(first)
        mock_events.near_copy(copy, rng)
        copies.append(mock_events.dump(copy))
    times = [mock_events.event_time(mock_events.load(c)) for c in copies]
    assert len(set(times)) == 5
    ref = mock_events.event_time(doc)
    for copy, t in zip(copies, times):
        assert 0 < abs(t - ref) <= 0.005
        event, = source(copy, entry).values()
        for a, b in zip(base.singles, event.singles):
            assert b.snr != a.snr and b.snr == pytest.approx(a.snr, rel=0.05)
            assert float(b.time) - float(a.time) == pytest.approx(
                t - ref, abs=1e-6)
        from igwn_ligolw import lsctables
        row, = lsctables.CoincInspiralTable.get_table(mock_events.load(copy))
        assert entry['far'] / 2 <= row.combined_far <= entry['far'] * 2


def test_grb_notice_at_the_candidate_time(gcn_samples):
    from importlib import resources
    template = resources.files('gwcelery.data').joinpath(
        GRB_TEMPLATE).read_bytes()
    assert template == gcn_samples['fermi_grb_gcn.xml']
    gpstime = gps_now() - 30
    a = mock_events.grb_notice(template, gpstime)
    b = mock_events.grb_notice(template, gpstime)
    root = parse(a, 1 << 20)
    assert get_notice_type(root) == 115
    params = {p.get('name'): p.get('value') for p in root.iter('Param')}
    iso = root.findtext('.//ISOTime')
    when = Time(iso.rstrip('Z'), format='isot', scale='utc')
    assert float(when.gps) == pytest.approx(gpstime, abs=0.01)
    tjd, sod = int(params['Burst_TJD']), float(params['Burst_SOD'])
    assert Time(tjd + 40000 + sod / 86400, format='mjd',
                scale='utc').gps == pytest.approx(gpstime, abs=0.01)
    assert params['TrigID'] in root.get('ivorn')
    assert iso.rstrip('Z') in root.get('ivorn')
    assert params["TrigID"] != parse(b, 1 << 20).find(
        ".//Param[@name='TrigID']").get('value')
    # The rest is the real notice's.
    assert params['Packet_Type'] == '115' and 'Most_Likely_Index' not in params
    assert root.findtext('.//C1') == '140.0500'
