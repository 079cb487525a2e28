"""p_astro: the numbers, in-process (the task is tested in
test_products.py)."""
import json
import math

import pytest

from gwcelery.tasks import p_astro

from .fixtures.products import event_json


def test_pycbc_bns_reference_value():
    """A pycbc HL event with SNR 12 and FAR 1e-9 Hz on a 1.4 + 1.4 M☉
    template: BNS 0.975, computed by hand from p-astro's shipped counts
    (FAR* × live time = 14394240 s / 30 d terrestrial counts)."""
    result = p_astro.compute(12, 1e-9, 1.4, 1.4, 'pycbc', {'H1', 'L1'})
    assert result['BNS'] == pytest.approx(0.97505, abs=1e-5)
    assert result['NSBH'] == result['BBH'] == 0.0
    assert result['Terrestrial'] == pytest.approx(1 - result['BNS'])
    assert all(type(v) is float for v in result.values())
    json.dumps(result)


def test_toy_model_by_hand():
    """Kapadia et al. (2020): Bayes factor 3 ρ*³/ρ⁴ · FAR*/FAR, the BBH
    counts (10.4644 over the live time) against FAR* × live time terrestrial
    counts; BBH bin weight 1 of 3 categories."""
    far_star = 1 / (30 * 86400)
    counts_terrestrial = far_star * 14394240
    bayes = 3 * 8.5 ** 3 / 20 ** 4 * far_star / 1e-8
    astro = 3 * bayes * 10.4644247052
    expected = astro / (astro + counts_terrestrial)
    result = p_astro.compute(20, 1e-8, 30, 20, 'gstlal', {'H1', 'L1'})
    assert result['BBH'] == pytest.approx(expected, rel=1e-9)
    assert sum(result.values()) == pytest.approx(1)


def test_gstlal_snr_is_not_capped_but_pycbc_is():
    """p-astro caps pycbc's SNR at 10 below its FAR threshold (3.2e-10 Hz
    for HL): the toy foreground density falls as SNR⁻⁴, and a pipeline
    whose FAR stops falling would otherwise make loud events look less
    astrophysical."""
    loud = dict(far=1e-12, mass1=1.4, mass2=1.4, instruments={'H1', 'L1'})
    gstlal = p_astro.compute(30, pipeline='gstlal', **loud)
    pycbc = p_astro.compute(30, pipeline='pycbc', **loud)
    capped = p_astro.compute(10, pipeline='gstlal', **loud)
    assert pycbc == pytest.approx(capped)
    assert pycbc['Terrestrial'] < gstlal['Terrestrial']
    # Above the FAR threshold nothing is capped.
    quiet = dict(loud, far=1e-9)
    assert p_astro.compute(30, pipeline='pycbc', **quiet) == \
        p_astro.compute(30, pipeline='gstlal', **quiet)


def test_mbtaonline_uses_mbta_thresholds():
    args = (50, 1e-15, 1.4, 1.4)
    assert p_astro.compute(*args, 'MBTAOnline', {'H1', 'L1', 'V1'}) == \
        pytest.approx(p_astro.compute(12, 1e-15, 1.4, 1.4, 'gstlal',
                                      {'H1', 'L1', 'V1'}))


def test_unknown_detector_sets_keep_their_snr():
    assert p_astro.compute(30, 1e-12, 1.4, 1.4, 'pycbc', {'H1', 'K1'}) == \
        p_astro.compute(30, 1e-12, 1.4, 1.4, 'gstlal', {'H1', 'K1'})


@pytest.mark.parametrize('masses,category', [
    ((1.4, 1.3), 'BNS'), ((10.0, 1.4), 'NSBH'), ((30.0, 25.0), 'BBH')])
def test_mass_cuts(masses, category):
    result = p_astro.compute(15, 1e-12, *masses, 'gstlal', {'H1', 'L1'})
    assert max(result, key=result.get) == category


def test_mass_gap_is_terrestrial():
    # No category of the hard cuts holds two objects of 3-5 M☉.
    result = p_astro.compute(15, 1e-12, 4.0, 3.5, 'gstlal', {'H1', 'L1'})
    assert result['Terrestrial'] == 1.0


def test_zero_far_is_the_limit():
    result = p_astro.compute(12, 0.0, 1.4, 1.4, 'gstlal', {'H1', 'L1'})
    assert result['BNS'] == pytest.approx(1.0)
    assert all(math.isfinite(v) for v in result.values())


@pytest.mark.parametrize('args', [
    (-1, 1e-9, 1.4, 1.4), (12, -1e-9, 1.4, 1.4), (12, None, 1.4, 1.4),
    (12, 1e-9, math.inf, 1.4), ('loud', 1e-9, 1.4, 1.4)])
def test_bad_input(args):
    with pytest.raises(ValueError):
        p_astro.compute(*args, 'gstlal', {'H1', 'L1'})


def test_compute_event_reads_the_event_json():
    event = event_json(snr=12, far=1e-9, pipeline='pycbc')
    assert p_astro.compute_event(event) == p_astro.compute(
        12, 1e-9, 1.4, 1.3, 'pycbc', {'H1', 'L1'})
    del event['extra_attributes']['CoincInspiral']['snr']
    with pytest.raises(ValueError, match='no CoincInspiral SNR'):
        p_astro.compute_event(event)
