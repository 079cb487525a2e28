"""The orchestrator's rules for notices (pure functions)."""
import math

import pytest

from gwcelery import app, notice_rules
from gwcelery.data import first2years
from gwcelery.superevent_rules import Rules


@pytest.mark.parametrize('kind, voevent_type', [
    ('preliminary-1', 'PR'), ('preliminary-2', 'PR'), ('initial', 'IN'),
    ('update:bilby.multiorder.fits,3', 'UP'), ('retraction', 'RE')])
def test_voevent_type(kind, voevent_type):
    assert notice_rules.voevent_type(kind) == voevent_type


def test_unknown_kind_is_an_error():
    with pytest.raises(ValueError, match='not a notice kind'):
        notice_rules.voevent_type('early')


def test_kind_names():
    assert notice_rules.preliminary(2) == 'preliminary-2'
    assert notice_rules.update('x.fits,1') == 'update:x.fits,1'
    assert [notice_rules.carries_event_products(k) for k in (
        'preliminary-1', 'initial', 'update:x.fits,0', 'retraction')] == [
            True, True, False, False]


def _superevent(category='Production', labels=()):
    return {'superevent_id': 'S1', 'category': category,
            'labels': list(labels)}


@pytest.mark.parametrize('category', ['Test', 'T'])
def test_test_superevents_are_refused(category):
    for kind in ('preliminary-1', 'initial', 'retraction'):
        reason = notice_rules.refusal(kind, _superevent(category), {'x'})
        assert 'Test superevents are never sent' in reason


def test_mdc_and_production_are_sent():
    for category in ('MDC', 'Production'):
        assert notice_rules.refusal('preliminary-1', _superevent(category),
                                    set()) is None


def test_retracted_superevents_get_only_the_retraction():
    retracted = _superevent(labels=['ADVNO'])
    for kind in ('preliminary-2', 'initial', 'update:a.fits,0'):
        assert 'ADVNO' in notice_rules.refusal(kind, retracted,
                                               {'preliminary-1'})
    assert notice_rules.refusal('retraction', retracted,
                                {'preliminary-1'}) is None


@pytest.mark.parametrize('kind, word', [('retraction', 'retract'),
                                        ('update:a.fits,0', 'update')])
def test_nothing_to_retract_or_update_before_a_notice(kind, word):
    reason = notice_rules.refusal(kind, _superevent(), set())
    assert reason.endswith(f'nothing to {word}')


@pytest.mark.parametrize('entry', first2years.events(),
                         ids=lambda e: e['name'])
def test_publishable_agrees_with_the_bank(entry):
    """The bank's own flag (one per 60 days, trials factor 5) and the
    configured rule agree on every event."""
    event = {'graceid': 'G1', 'group': 'CBC', 'pipeline': 'gstlal',
             'far': entry['far']}
    reason = notice_rules.unpublishable(event, Rules.from_conf(app.conf))
    assert (reason is None) == entry['publishable']
    if reason:
        threshold = 1 / (60 * 86400)
        assert f'FAR {entry["far"]:g} Hz × trials factor 5 = ' \
               f'{5 * entry["far"]:g} Hz' in reason
        assert f'CBC threshold of {threshold:g} Hz' in reason


def test_no_far_is_not_publishable():
    reason = notice_rules.unpublishable(
        {'graceid': 'G2', 'group': 'CBC', 'pipeline': 'gstlal'},
        Rules.from_conf(app.conf))
    assert 'G2 has no FAR' in reason


def test_voevent_options():
    options = notice_rules.voevent_options(
        _superevent(labels=['INJ']), 'bayestar.multiorder.fits',
        {'HasNS': 1.0, 'HasRemnant': 0.0},
        {'BNS': 0.9, 'NSBH': '0.05', 'BBH': math.nan, 'Terrestrial': 1.5})
    assert options == {
        'internal': False, 'open_alert': True, 'hardware_inj': True,
        'skymap_filename': 'bayestar.multiorder.fits',
        'skymap_type': 'bayestar', 'ProbHasNS': 1.0, 'ProbHasRemnant': 0.0,
        'BNS': 0.9, 'NSBH': 0.05}


def test_voevent_options_without_products():
    assert notice_rules.voevent_options(_superevent()) == {
        'internal': False, 'open_alert': True, 'hardware_inj': False}


@pytest.mark.parametrize('name, expected', [
    ('bayestar.multiorder.fits', True), ('bilby.fits.gz', True),
    ('skymap.fits', True), ('p_astro.json', False), ('', False),
    (None, False)])
def test_is_skymap(name, expected):
    assert notice_rules.is_skymap(name) is expected
