"""HasNS/HasRemnant: the remnant-mass fit and the rule, in-process (the task
is tested in test_products.py)."""
import json
import math

import pytest

from gwcelery.tasks import em_bright

from .fixtures.products import event_json

# -- the remnant-mass fit ----------------------------------------------------


@pytest.mark.parametrize('chi,radius', [
    # Bardeen, Press & Teukolsky (1972): 6 M without spin, M for a maximal
    # prograde orbit, 9 M for a maximal retrograde one; 4.233 M at a = 0.5.
    (0.0, 6.0), (1.0, 1.0), (-1.0, 9.0), (0.5, 4.233003), (-0.5, 7.554584)])
def test_isco_radius(chi, radius):
    assert em_bright.isco_radius(chi) == pytest.approx(radius, rel=1e-6)


def test_isco_radius_rejects_spins_beyond_one():
    with pytest.raises(ValueError, match='between -1 and 1'):
        em_bright.isco_radius(1.2)


def test_baryon_mass_adds_the_binding_energy():
    # Lattimer & Prakash (2001): BE/M = 0.6 C / (1 - C/2); C = 0.2 → 2/15.
    assert em_bright.baryon_mass(1.4, 0.2) == pytest.approx(1.4 * 17 / 15)


def test_remnant_mass_by_hand():
    """Eq. (4) of Foucart, Hinderer & Nissanke (2018), worked out term by
    term for a 7 M☉ black hole with spin 0.5 and a 1.4 M☉, 12 km star."""
    c = 1476.6250380501247 * 1.4 / 12000
    eta = 7 * 1.4 / 8.4 ** 2
    fit = (0.406 * (1 - 2 * c) / eta ** (1 / 3)
           - 0.139 * 4.233003 * c / eta + 0.255)
    expected = fit ** 1.761 * 1.4 * (1 + 0.6 * c / (1 - 0.5 * c))
    assert em_bright.remnant_mass(7, 1.4, 0.5, 12000) == pytest.approx(
        expected, rel=1e-5)


@pytest.mark.parametrize('m_bh,m_ns,radius,expected', [
    # Published examples of the same fit in ligo.em_bright's computeDiskMass
    # (which takes the baryon mass from the Lattimer & Prakash (2016)
    # binding energy 0.619 C + 0.1359 C²; hence 0.1 %).
    (5.0, 1.0, 15000.0, 0.12265712),
    (6.0, 1.2, 15000.0, 0.04272054),
    (7.0, 1.6, 15000.0, 0.0)])
def test_remnant_mass_against_published_examples(m_bh, m_ns, radius,
                                                 expected):
    assert em_bright.remnant_mass(m_bh, m_ns, 0.0, radius) == pytest.approx(
        expected, rel=2e-3, abs=1e-9)


def test_remnant_mass_grows_with_prograde_spin_and_stellar_radius():
    base = em_bright.remnant_mass(10, 1.4, 0.0, 12000)
    assert base == 0.0  # a 10 M☉ non-spinning black hole swallows it all
    assert em_bright.remnant_mass(10, 1.4, 0.9, 12000) > 0.1
    assert em_bright.remnant_mass(10, 1.4, -0.9, 12000) == 0.0
    assert (em_bright.remnant_mass(6, 1.4, 0.7, 14000)
            > em_bright.remnant_mass(6, 1.4, 0.7, 11000) > 0)


# -- the equation of state ---------------------------------------------------

def test_sly_equation_of_state():
    """SLy (Douchin & Haensel 2001): maximum mass 2.05 M☉, R(1.4 M☉) ≈
    11.7 km."""
    sly = em_bright.NeutronStarEOS.named('SLY')
    assert sly.max_mass == pytest.approx(2.05, abs=0.01)
    assert sly.radius(1.4) == pytest.approx(11.75e3, rel=0.01)
    assert em_bright.NeutronStarEOS.named('SLY') is sly
    with pytest.raises(ValueError, match='maximum mass'):
        sly.radius(2.2)
    # Below the lightest tabulated star: that star's radius.
    assert sly.radius(0.01) == sly.radius(sly.min_mass)


def test_ap4_example():
    """ligo.em_bright's published AP4 example: 5 + 1 M☉, no spin."""
    ap4 = em_bright.NeutronStarEOS.named('AP4')
    assert em_bright.remnant_mass(5, 1, 0, ap4.radius(1)) == pytest.approx(
        0.00851525, rel=2e-3)


def test_unknown_equation_of_state():
    with pytest.raises(ValueError, match='no equation of state'):
        em_bright.NeutronStarEOS('NOSUCHEOS')


# -- the rule ----------------------------------------------------------------

@pytest.mark.parametrize('masses,spins,has_ns,has_remnant', [
    ((1.4, 1.3), (0, 0), 1, 1),          # BNS
    ((2.9, 1.2), (0, 0), 1, 1),          # both within the NS mass limit
    ((36.0, 29.0), (0.3, 0.2), 0, 0),    # heavy BBH
    ((8.0, 1.4), (0.0, 0.0), 1, 0),      # NSBH, swallowed whole
    ((8.0, 1.4), (0.9, 0.0), 1, 1),      # NSBH, fast prograde spin
    ((1.4, 8.0), (0.0, 0.9), 1, 1),      # the same, components swapped
    ((10.0, 2.5), (0.9, 0.0), 1, 0),     # m2 beyond SLy's maximum mass
    ((6.0, 3.5), (0.0, 0.0), 0, 0),      # m2 above the NS mass limit
])
def test_classify(masses, spins, has_ns, has_remnant):
    result = em_bright.classify(*masses, *spins)
    assert (result['HasNS'], result['HasRemnant']) == (has_ns, has_remnant)
    assert all(type(result[k]) is float for k in ('HasNS', 'HasRemnant'))
    json.dumps(result)


def test_classify_ns_max_mass_is_a_parameter():
    assert em_bright.classify(6.0, 2.5, ns_max_mass=2.0)['HasNS'] == 0.0
    assert em_bright.classify(6.0, 2.5, ns_max_mass=3.0)['HasNS'] == 1.0


@pytest.mark.parametrize('args', [
    (-1.0, 1.4), (1.4, 0.0), (math.nan, 1.4), (1.4, 1.4, 2.0, 0.0),
    ('a', 1.4)])
def test_classify_rejects_bad_input(args):
    with pytest.raises(ValueError):
        em_bright.classify(*args)


def test_template_from_event_json():
    event = event_json(mass1=10.0, mass2=1.4, spin1z=0.5)
    assert em_bright.template(event) == (10.0, 1.4, 0.5, 0.0)
    with pytest.raises(ValueError, match='no template masses'):
        em_bright.template({'graceid': 'G1', 'extra_attributes': {}})
