"""Identifiers as GraceDb makes them.

Events: one counter for all events, with a prefix by kind: ``T`` (group
Test), ``M`` (search MDC), ``E`` (group External), ``G`` (everything else).
Superevents: ``S`` (production), ``TS`` (test), ``MS`` (MDC), then the UTC
date of ``t_0`` as ``YYMMDD``, then letters that count the superevents of
that category and date: ``a`` … ``z``, ``aa``, ``ab``, …. Confirmed ones
also get ``GW`` (``TGW``, ``MGW``) + date, with letters from the second one
of a date on.
"""
import string

from . import gpstime

__all__ = ('event_prefix', 'event_category', 'superevent_prefix',
           'gw_prefix', 'letters', 'date_code', 'CATEGORIES')

#: Superevent categories (code → display name), as the service root lists.
CATEGORIES = {'P': 'Production', 'T': 'Test', 'M': 'MDC'}

_SUPEREVENT_PREFIX = {'P': 'S', 'T': 'TS', 'M': 'MS'}
_GW_PREFIX = {'P': 'GW', 'T': 'TGW', 'M': 'MGW'}


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
    """``YYMMDD`` of a GPS time's UTC date (a leap second belongs to the
    day it ends)."""
    year, month, day = gpstime.utc_fields(gps)[:3]
    return f'{year % 100:02d}{month:02d}{day:02d}'
