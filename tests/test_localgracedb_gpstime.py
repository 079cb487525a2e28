"""GPS ↔ UTC of the local GraceDb (superevent dates, VOEvent times, GCN
notice times): known pairs, leap seconds, and no network access."""
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from gwcelery.localgracedb import gpstime, ids

DATA = Path(__file__).parent / 'data'

# Published pairs: GW150914, GW170817 (GCN circulars and the discovery
# papers give both times), and round UTC times either side of the leap
# seconds of 2015-07-01 and 2017-01-01 (GPS − UTC: 16 s, then 17 s, then
# 18 s).
KNOWN = [
    (1126259462.4, '2015-09-14T09:50:45.400000'),
    (1187008882.4, '2017-08-17T12:41:04.400000'),
    (1119744015.0, '2015-06-30T23:59:59.000000'),
    (1119744016.0, '2015-06-30T23:59:60.000000'),
    (1119744017.0, '2015-07-01T00:00:00.000000'),
    (1167264016.5, '2016-12-31T23:59:59.500000'),
    (1167264017.25, '2016-12-31T23:59:60.250000'),
    (1167264018.0, '2017-01-01T00:00:00.000000'),
    (630720013.0, '2000-01-01T00:00:00.000000'),
    (0.0, '1980-01-06T00:00:00.000000'),
]


@pytest.mark.parametrize('gps,utc', KNOWN)
def test_known_gps_utc_pairs(gps, utc):
    assert gpstime.gps_to_isot(gps) == utc
    assert gpstime.isot_to_gps(utc) == gps
    assert gpstime.isot_to_gps(utc + 'Z') == gps


def test_microseconds_are_rounded_like_timedelta():
    # 1187008882.4 is 1187008882.39999997… as a double.
    assert gpstime.gps_to_isot(1187008882.4).endswith('.400000')
    assert gpstime.gps_to_isot(1187008882.9999996).endswith(
        '12:41:05.000000')


@pytest.mark.parametrize('gps,date', [
    (1167264016.5, '161231'),
    # The leap second 2016-12-31T23:59:60 belongs to the last day of 2016.
    (1167264017.0, '161231'),
    (1167264017.999, '161231'),
    (1167264018.0, '170101'),
    (1238303737.0, '190403'),
])
def test_superevent_dates_around_a_leap_second(gps, date):
    assert ids.date_code(gps) == date


@pytest.mark.parametrize('gps', [-1.0, 2.0 ** 31, 1e300, float('nan')])
def test_gps_times_out_of_range(gps):
    with pytest.raises(ValueError, match='GPS time out of range'):
        gpstime.gps_to_isot(gps)


@pytest.mark.parametrize('text,reason', [
    ('2017-06-30T23:59:60', 'no leap second then'),
    ('2017-02-30T00:00:00', 'day is out of range'),
    ('2017-01-01T00:00:61', 'second must be in 0..59'),
    ('2017-01-01', 'not a UTC time'),
    ('2017-01-01T00:00:00+02:00', 'not a UTC time'),
    ('1979-12-31T00:00:00', 'out of range'),
    ('1980-01-05T23:59:59', 'out of range'),
    ('2100-01-01T00:00:00', 'out of range'),
])
def test_bad_utc_times(text, reason):
    with pytest.raises(ValueError, match=reason):
        gpstime.isot_to_gps(text)


# In a fresh process: sockets that record and refuse every connection,
# every warning recorded, and astropy told that today is 2031, so that
# astropy's leap-second table would look expired (astropy then tries to
# download a new one on its first UTC conversion, or warns).
_NO_NETWORK = '''
import socket, sys, warnings
attempts = []
def refuse(self, address, *args):
    attempts.append(address)
    raise OSError('no network in this test')
socket.socket.connect = socket.socket.connect_ex = refuse
real_getaddrinfo = socket.getaddrinfo
def getaddrinfo(host, *args, **kwargs):
    attempts.append(host)
    raise OSError('no network in this test')
socket.getaddrinfo = getaddrinfo
warned = []
warnings.simplefilter('always')
warnings.showwarning = lambda message, *args, **kwargs: warned.append(
    str(message))
from astropy.time import Time
from astropy.utils import iers
iers.LeapSeconds._today = staticmethod(
    lambda: Time('2031-01-01', scale='tai', format='iso'))
'''

_OURS = '''
from pathlib import Path
from gwcelery.localgracedb import gpstime, ids, voevent
from gwcelery.localgracedb.eventfiles import read_event_file
assert ids.date_code(1167264017.5) == '161231'
assert gpstime.isot_to_gps('2016-12-31T23:59:60.5') == 1167264017.5
voevent.build_voevent(
    {'superevent_id': 'S1', 'category': 'P', 't_0': 1187008882.4},
    {'group': 'CBC', 'pipeline': 'gstlal'}, 1, 'PR', {}, None, 'http://x')
read_event_file(Path(DATA, 'gcn', 'snews_gcn.xml').read_bytes())
read_event_file(Path(DATA, 'gracedb', 'coinc.xml').read_bytes())
'''

# The same harness around astropy's own conversion, with its default
# configuration: it must catch astropy's download attempt, else the test
# above proves nothing.
_ASTROPY = '''
Time(1187008882.4, format='gps').utc.isot
'''

_REPORT = '''
print('attempts:', attempts)
print('warnings:', warned)
sys.exit(1 if attempts or warned else 0)
'''


def _run(body):
    code = f'DATA = {str(DATA)!r}\n' + _NO_NETWORK + body + _REPORT
    return subprocess.run([sys.executable, '-c', code], capture_output=True,
                          text=True, timeout=120)


def test_conversions_need_no_network_and_warn_nothing():
    result = _run(textwrap.dedent(_OURS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'attempts: []\nwarnings: []' in result.stdout


def test_the_harness_sees_astropy_fetching_leap_seconds():
    result = _run(_ASTROPY)
    assert result.returncode == 1, result.stdout + result.stderr
    assert 'attempts: []' not in result.stdout
