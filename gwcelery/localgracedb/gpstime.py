"""GPS time ↔ UTC, with the leap-second table of lal.

Superevent ids carry the UTC date of ``t_0`` and VOEvents its UTC time;
GCN notices give UTC times that become GPS times of External events. The
conversions use ``lal.GPSToUTC`` and ``lal.UTCToGPS`` (lalsuite, which
ligo.skymap already needs): the leap seconds are compiled into lal, so
nothing is read from disk or fetched from the network, and a conversion
takes well under a microsecond. astropy's time scales give the same
answers but cost about 0.2 ms a call and, on the first UTC conversion of a
process, check their leap-second table's expiry date and try to download
a newer one when it is close (see :doc:`/localgracedb`).

lal counts GPS seconds in a signed 32-bit integer, so the times it
converts are those of GPS seconds 0 to 2\\ :sup:`31` − 1 (1980-01-06 to
2048-01-24); others raise :class:`ValueError`. During a leap second the
UTC seconds field is 60 (``2016-12-31T23:59:60``).
"""
import datetime
import re

import lal

__all__ = ('utc_fields', 'gps_to_isot', 'isot_to_gps')

_LAST_GPS = 2 ** 31 - 1

# YYYY-MM-DDTHH:MM:SS[.fraction][Z], the form of VOEvent ISOTime.
_ISOT = re.compile(r'(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d):(\d\d)'
                   r'(?:\.(\d+))?Z?')


def _split(gps):
    """Whole seconds and microseconds of a GPS time, rounded to the
    nearest microsecond (as :class:`datetime.timedelta` rounds)."""
    try:
        delta = datetime.timedelta(seconds=float(gps))
    except (OverflowError, ValueError):
        raise ValueError(f'GPS time out of range: {gps!r}') from None
    seconds = delta.days * 86400 + delta.seconds
    if not 0 <= seconds <= _LAST_GPS:
        raise ValueError(f'GPS time out of range: {gps!r} (lal converts '
                         f'0 to {_LAST_GPS})')
    return seconds, delta.microseconds


def utc_fields(gps):
    """UTC calendar fields of a GPS time.

    Parameters
    ----------
    gps : float
        GPS seconds.

    Returns
    -------
    tuple
        ``(year, month, day, hour, minute, second, microsecond)``;
        ``second`` is 60 during a leap second.

    Raises
    ------
    ValueError
        Outside the range that lal converts.
    """
    seconds, microseconds = _split(gps)
    return (*lal.GPSToUTC(seconds)[:6], microseconds)


def gps_to_isot(gps):
    """``YYYY-MM-DDTHH:MM:SS.ffffff`` (UTC) of a GPS time."""
    year, month, day, hour, minute, second, microsecond = utc_fields(gps)
    return (f'{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:'
            f'{second:02d}.{microsecond:06d}')


def isot_to_gps(text):
    """GPS seconds of a UTC time written ``YYYY-MM-DDTHH:MM:SS[.f][Z]``.

    The seconds may be 60 during a real leap second. Fractions are kept to
    the microsecond.

    Raises
    ------
    ValueError
        Not such a time, or outside the range that lal converts.
    """
    match = _ISOT.fullmatch(text.strip())
    if not match:
        raise ValueError(f'not a UTC time: {text!r}')
    *fields, fraction = match.groups()
    year, month, day, hour, minute, second = map(int, fields)
    try:
        # The calendar check; a leap second is checked below.
        datetime.datetime(year, month, day, hour, minute,
                          59 if second == 60 else second)
    except ValueError as e:
        raise ValueError(f'not a UTC time: {text!r} ({e})') from None
    # Years that lal converts without an error; the GPS range is checked
    # exactly below.
    if not 1980 <= year <= 2047:
        raise ValueError(f'UTC time out of range: {text!r} (lal converts '
                         'GPS seconds 0 to 2**31 - 1)')
    seconds = lal.UTCToGPS((year, month, day, hour, minute, second,
                            0, 0, 0))
    if second == 60 and lal.GPSToUTC(seconds)[5] != 60:
        raise ValueError(f'not a UTC time: {text!r} (no leap second then)')
    microseconds = round(float('0.' + fraction) * 1e6) if fraction else 0
    result = (seconds * 10 ** 6 + microseconds) / 10 ** 6
    _split(result)
    return result
