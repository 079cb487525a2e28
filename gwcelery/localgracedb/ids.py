"""Identifiers as GraceDb makes them.

Events: one counter for all events, with a prefix by kind: ``T`` (group
Test), ``M`` (search MDC), ``E`` (group External), ``G`` (everything else).
Superevents: ``S`` (production), ``TS`` (test), ``MS`` (MDC), then the UTC
date of ``t_0`` as ``YYMMDD``, then letters that count the superevents of
that category and date: ``a`` … ``z``, ``aa``, ``ab``, …. Confirmed ones
also get ``GW`` (``TGW``, ``MGW``) + date, with letters from the second one
of a date on.
"""
import datetime
import string

__all__ = ('event_prefix', 'event_category', 'superevent_prefix',
           'letters', 'gps_to_utc', 'CATEGORIES')

#: Superevent categories (code → display name), as the service root lists.
CATEGORIES = {'P': 'Production', 'T': 'Test', 'M': 'MDC'}

_SUPEREVENT_PREFIX = {'P': 'S', 'T': 'TS', 'M': 'MS'}
_GW_PREFIX = {'P': 'GW', 'T': 'TGW', 'M': 'MGW'}

# Leap seconds (GPS − UTC) and the UTC day each took effect; GPS time began
# 1980-01-06. The table ends with the leap second of 2017-01-01.
_GPS_EPOCH = datetime.datetime(1980, 1, 6)
_LEAPS = [(datetime.datetime(*d), n) for n, d in enumerate([
    (1981, 7, 1), (1982, 7, 1), (1983, 7, 1), (1985, 7, 1), (1988, 1, 1),
    (1990, 1, 1), (1991, 1, 1), (1992, 7, 1), (1993, 7, 1), (1994, 7, 1),
    (1996, 1, 1), (1997, 7, 1), (1999, 1, 1), (2006, 1, 1), (2009, 1, 1),
    (2012, 7, 1), (2015, 7, 1), (2017, 1, 1)], start=1)]


def gps_to_utc(gps):
    """UTC :class:`datetime.datetime` (naive) of a GPS time in seconds."""
    naive = _GPS_EPOCH + datetime.timedelta(seconds=float(gps))
    offset = 0
    for when, count in _LEAPS:
        if naive - datetime.timedelta(seconds=count) >= when:
            offset = count
    return naive - datetime.timedelta(seconds=offset)


def event_category(group, search):
    """Superevent category code (``P``, ``T``, ``M``) of an event."""
    if group == 'Test':
        return 'T'
    if search == 'MDC':
        return 'M'
    return 'P'


def event_prefix(group, search):
    """Graceid prefix of a new event."""
    if group == 'Test':
        return 'T'
    if search == 'MDC':
        return 'M'
    if group == 'External':
        return 'E'
    return 'G'


def letters(n):
    """Bijective base-26 letters: 1 → ``a``, 26 → ``z``, 27 → ``aa``."""
    if n < 1:
        raise ValueError('n must be positive')
    result = ''
    while n:
        n, remainder = divmod(n - 1, 26)
        result = string.ascii_lowercase[remainder] + result
    return result


def superevent_prefix(category):
    """``S``, ``TS`` or ``MS``."""
    return _SUPEREVENT_PREFIX[category]


def gw_prefix(category):
    """``GW``, ``TGW`` or ``MGW``."""
    return _GW_PREFIX[category]


def date_code(gps):
    """``YYMMDD`` of a GPS time's UTC date."""
    return gps_to_utc(gps).strftime('%y%m%d')
