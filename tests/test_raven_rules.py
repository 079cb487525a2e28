"""Which pairs RAVEN compares, and in which windows (pure rules)."""
import pytest

from gwcelery import app
from gwcelery.raven_rules import (Window, searches_from_external,
                                  searches_from_superevent, windows)

WINDOWS = windows(app.conf)


def external(pipeline='Fermi', search='GRB', gpstime=1000.0, group='External',
             labels=()):
    return {'graceid': 'E1', 'group': group, 'pipeline': pipeline,
            'search': search, 'gpstime': gpstime, 'labels': list(labels)}


def superevent(pipeline='gstlal', t_0=1000.0, category='Production',
               group='CBC'):
    return {'superevent_id': 'S1', 'category': category, 't_0': t_0,
            'preferred_event_data': {'pipeline': pipeline, 'group': group}}


def test_windows_are_the_settings():
    assert WINDOWS == (Window('grb', 'cbc', -5.0, 1.0),
                       Window('grb', 'burst', -600.0, 60.0),
                       Window('snews', 'burst', -10.0, 10.0))


def test_grb_searches_cbc_and_burst_superevents():
    searches = searches_from_external(external(gpstime=1000.0), WINDOWS)
    # GW time relative to the GRB: superevents with t_0 in the window.
    assert [(s.window.gw_kind, s.query) for s in searches] == [
        ('cbc', '995.000000 .. 1001.000000'),
        ('burst', '400.000000 .. 1060.000000')]
    cbc, burst = searches
    assert cbc.matches(superevent('pycbc'))
    assert not cbc.matches(superevent('CWB', group='Burst'))
    assert burst.matches(superevent('CWB', group='Burst'))
    assert not cbc.matches(superevent(category='Test'))


def test_superevent_searches_external_events():
    (cbc,) = searches_from_superevent(superevent(t_0=1000.0), WINDOWS)
    # External times that put the GW in [-5, +1] s of them.
    assert cbc.query == 'External 999.000000 .. 1005.000000'
    assert cbc.matches(external('Swift'))
    assert cbc.matches(external('Fermi', 'SubGRB'))
    assert not cbc.matches(external('SNEWS', 'Supernova'))
    assert not cbc.matches(external(labels=['NOT_GRB']))
    assert not cbc.matches(external(search='MDC'))
    grb, snews = searches_from_superevent(
        superevent('CWB', group='Burst'), WINDOWS)
    assert grb.query == 'External 940.000000 .. 1600.000000'
    assert snews.query == 'External 990.000000 .. 1010.000000'
    assert snews.matches(external('SNEWS', 'Supernova'))
    assert not snews.matches(external('Fermi'))


def test_categories_are_kept_apart():
    (test,) = searches_from_superevent(
        superevent('CWB', group='Burst', category='Test'), WINDOWS)[1:]
    assert test.query.startswith('Test ')
    assert test.matches(external('SNEWS', 'Supernova', group='Test'))
    assert not test.matches(external('SNEWS', 'Supernova'))
    (mdc,) = searches_from_superevent(superevent(category='MDC'), WINDOWS)
    assert mdc.matches(external(search='MDC'))
    assert not mdc.matches(external())


@pytest.mark.parametrize('event', [
    external(labels=['NOT_GRB']),
    external('IceCube', 'HEN'),
    external('Fermi', 'AllSky'),
])
def test_events_that_take_no_part(event):
    assert searches_from_external(event, WINDOWS) == []


def test_snews_searches_burst_superevents_only():
    (search,) = searches_from_external(external('SNEWS', 'Supernova'),
                                       WINDOWS)
    assert search.window.gw_kind == 'burst'
    assert search.query == '990.000000 .. 1010.000000'
