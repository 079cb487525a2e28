"""Source classification: does a compact binary hold a neutron star, and
does its merger leave matter outside the final black hole?

The rule is the one GWCelery applied to the template of a search pipeline
before trained classifiers replaced it. It uses the point estimates of the
matched template's masses and aligned spins, as they stand in the event's
``SingleInspiral`` attributes: no measurement uncertainty enters, so the
two answers are 0 or 1.

* **HasNS** is 1 when the lighter object is at most
  :data:`~gwcelery.conf.em_bright_ns_max_mass` (3 M☉ by default).
* **HasRemnant** is 0 without a neutron star; 1 when the heavier object
  is also at most that mass (two neutron stars: matter is always left);
  otherwise, for a black hole and a neutron star, 1 when the remnant mass
  of Foucart, Hinderer & Nissanke (2018) (:func:`remnant_mass`) is
  positive. The neutron star's radius comes from the equation of state
  :data:`~gwcelery.conf.em_bright_eos` of lalsimulation; a lighter object
  heavier than that equation of state's maximum mass cannot be a neutron
  star under it and leaves no remnant.

:func:`classify` is the rule as a pure function; the task
:func:`classify_event` applies it to an event and writes
``em_bright.json`` (``{"HasNS": …, "HasRemnant": …}``) to the event, tagged
``em_bright``, then labels it ``EMBRIGHT_READY``.
"""
import functools
import logging
import math

from .. import app
from . import gracedb

__all__ = ('FILENAME', 'LABEL', 'TAGS', 'isco_radius', 'baryon_mass',
           'remnant_mass', 'NeutronStarEOS', 'classify', 'template',
           'classify_event')

log = logging.getLogger(__name__)

#: Name of the file written to the event.
FILENAME = 'em_bright.json'

#: Label applied once the file is there.
LABEL = 'EMBRIGHT_READY'

#: Tags of the log entry.
TAGS = ('em_bright',)

#: Fit parameters α, β, γ, δ of Eq. (4) of Foucart, Hinderer & Nissanke
#: (2018).
FOUCART_2018 = (0.406, 0.139, 0.255, 1.761)

#: G M☉ / c² in metres (the IAU nominal solar mass parameter, as lal's
#: ``MRSUN_SI``).
_MRSUN_M = 1476.6250380501247


def isco_radius(chi):
    """Radius of the innermost stable circular orbit around a Kerr black
    hole, in units of the black hole's mass (G M / c²).

    Bardeen, Press & Teukolsky (1972), ApJ 178, 347, Eq. (2.21).

    Parameters
    ----------
    chi : float
        Dimensionless spin along the orbital angular momentum: positive for
        prograde orbits, negative for retrograde ones; between -1 and 1.

    Returns
    -------
    float
        6 for a non-spinning black hole, 1 for ``chi = 1``, 9 for
        ``chi = -1``.
    """
    if not -1 <= chi <= 1:
        raise ValueError(f'black hole spin must be between -1 and 1: {chi}')
    z1 = 1 + (1 - chi ** 2) ** (1 / 3) * (
        (1 + chi) ** (1 / 3) + (1 - chi) ** (1 / 3))
    z2 = math.sqrt(3 * chi ** 2 + z1 ** 2)
    root = math.sqrt(max((3 - z1) * (3 + z1 + 2 * z2), 0.0))
    return 3 + z2 - math.copysign(root, chi)


def baryon_mass(mass, compactness):
    """Baryon mass of a neutron star from its gravitational mass.

    The binding energy fit of Lattimer & Prakash (2001), ApJ 550, 426,
    Eq. (36): BE / M = 0.6 C / (1 - 0.5 C), with C = G M / (R c²).
    """
    return mass * (1 + 0.6 * compactness / (1 - 0.5 * compactness))


def remnant_mass(m_bh, m_ns, chi_bh, r_ns):
    """Baryon mass left outside the black hole after a black hole–neutron
    star merger (accretion disk, tidal tail and ejecta), in M☉.

    Foucart, Hinderer & Nissanke (2018), Phys. Rev. D 98, 081501(R),
    arXiv:1807.00011, Eq. (4)::

        M_rem / M_NS^b = [max(α (1 - 2ρ) / η^(1/3) - β R_ISCO ρ / η + γ, 0)]^δ

    with α = 0.406, β = 0.139, γ = 0.255, δ = 1.761; ρ the neutron star's
    compactness G M_NS / (R_NS c²); η the symmetric mass ratio
    M_BH M_NS / (M_BH + M_NS)²; R_ISCO the black hole's innermost stable
    circular orbit in units of its mass (:func:`isco_radius`); M_NS^b the
    neutron star's baryon mass (:func:`baryon_mass`).

    Parameters
    ----------
    m_bh, m_ns : float
        Gravitational masses of the black hole and the neutron star (M☉).
    chi_bh : float
        The black hole's dimensionless spin along the orbital angular
        momentum.
    r_ns : float
        The neutron star's radius (m).
    """
    if m_bh <= 0 or m_ns <= 0 or r_ns <= 0:
        raise ValueError(f'masses and radius must be positive: m_bh={m_bh}, '
                         f'm_ns={m_ns}, r_ns={r_ns}')
    alpha, beta, gamma, delta = FOUCART_2018
    rho = _MRSUN_M * m_ns / r_ns
    eta = m_bh * m_ns / (m_bh + m_ns) ** 2
    fit = (alpha * (1 - 2 * rho) / eta ** (1 / 3)
           - beta * isco_radius(chi_bh) * rho / eta + gamma)
    return max(fit, 0.0) ** delta * baryon_mass(m_ns, rho)


class NeutronStarEOS:
    """A neutron-star equation of state of lalsimulation, by name
    (``'SLY'``, ``'AP4'``, …; see ``lalsimulation.SimNeutronStarEOSNames``).
    """

    def __init__(self, name):
        import lal
        import lalsimulation

        self.name = name
        self._msun = lal.MSUN_SI
        self._radius = lalsimulation.SimNeutronStarRadius
        try:
            eos = lalsimulation.SimNeutronStarEOSByName(name)
        except RuntimeError:
            raise ValueError(
                f'lalsimulation knows no equation of state {name!r}') from None
        self._family = lalsimulation.CreateSimNeutronStarFamily(eos)
        self.max_mass = lalsimulation.SimNeutronStarMaximumMass(
            self._family) / self._msun
        """Heaviest non-rotating neutron star (M☉)."""
        self.min_mass = lalsimulation.SimNeutronStarFamMinimumMass(
            self._family) / self._msun
        """Lightest neutron star of the tabulated family (M☉)."""

    @classmethod
    @functools.lru_cache(maxsize=None)
    def named(cls, name):
        """The equation of state ``name``, built once per process."""
        return cls(name)

    def radius(self, mass):
        """Radius (m) of a non-rotating neutron star of ``mass`` M☉.

        A mass below the family's lightest star takes that star's radius
        (templates reach below it only by rounding); one above the maximum
        mass is a :class:`ValueError`.
        """
        if mass > self.max_mass:
            raise ValueError(f'{mass} M☉ exceeds the maximum mass '
                             f'{self.max_mass:.3f} M☉ of EOS {self.name}')
        mass = max(mass, self.min_mass)
        try:
            return self._radius(mass * self._msun, self._family)
        except RuntimeError:
            # The interpolation fails within rounding of the maximum mass.
            raise ValueError(f'no radius for {mass} M☉ in EOS {self.name}'
                             ) from None


def classify(mass1, mass2, spin1z=0.0, spin2z=0.0, ns_max_mass=3.0,
             eos='SLY'):
    """HasNS and HasRemnant of a binary by the rule above.

    Parameters
    ----------
    mass1, mass2 : float
        Component masses (M☉), in either order.
    spin1z, spin2z : float
        Their dimensionless spins along the orbital angular momentum.
    ns_max_mass : float
        Heaviest object counted as a neutron star (M☉).
    eos : str
        lalsimulation equation of state for the neutron star's radius.

    Returns
    -------
    dict
        ``HasNS``, ``HasRemnant`` (floats, 0.0 or 1.0) and
        ``remnant_mass`` (M☉ from :func:`remnant_mass` for a black hole
        and a neutron star, else ``None``).
    """
    values = (mass1, mass2, spin1z, spin2z)
    if not all(isinstance(v, (int, float)) and math.isfinite(v)
               for v in values):
        raise ValueError(f'masses and spins must be finite numbers: {values}')
    if mass1 <= 0 or mass2 <= 0:
        raise ValueError(f'masses must be positive: {mass1}, {mass2}')
    if abs(spin1z) > 1 or abs(spin2z) > 1:
        raise ValueError(f'spins must be between -1 and 1: {spin1z}, '
                         f'{spin2z}')
    if mass2 > mass1:
        mass1, mass2, spin1z, spin2z = mass2, mass1, spin2z, spin1z
    has_ns = mass2 <= ns_max_mass
    mass = None
    if not has_ns:
        has_remnant = False
    elif mass1 <= ns_max_mass:
        has_remnant = True
    else:
        star = NeutronStarEOS.named(eos)
        if mass2 > star.max_mass:
            mass = 0.0
        else:
            mass = remnant_mass(mass1, mass2, spin1z, star.radius(mass2))
        has_remnant = mass > 0
    return {'HasNS': float(has_ns), 'HasRemnant': float(has_remnant),
            'remnant_mass': mass}


def template(event):
    """``(mass1, mass2, spin1z, spin2z)`` of an event's template.

    Every ``SingleInspiral`` row of a coincidence carries the same template;
    the first is read. Missing spins are 0.

    Raises
    ------
    ValueError
        The event has no ``SingleInspiral`` row with both masses.
    """
    singles = ((event.get('extra_attributes') or {})
               .get('SingleInspiral') or [])
    row = singles[0] if singles and isinstance(singles[0], dict) else {}
    try:
        masses = float(row['mass1']), float(row['mass2'])
    except (KeyError, TypeError, ValueError):
        raise ValueError(
            f'event {event.get("graceid")} has no template masses') from None
    spins = []
    for key in ('spin1z', 'spin2z'):
        try:
            spins.append(float(row.get(key) or 0.0))
        except (TypeError, ValueError):
            raise ValueError(f'event {event.get("graceid")}: {key} is not a '
                             f'number: {row.get(key)!r}') from None
    return (*masses, *spins)


@app.task(base=gracedb.GraceDbTask, shared=False)
def classify_event(event):
    """Classify a CBC event and record the result in GraceDb.

    ``event`` is the event's JSON from GraceDb; the result, ``HasNS`` and
    ``HasRemnant``, goes to :data:`FILENAME` with :data:`TAGS` and
    :data:`LABEL` (:func:`~gwcelery.tasks.gracedb.write_json_with_label`)
    and is returned.
    """
    graceid = event['graceid']
    result = classify(*template(event),
                      ns_max_mass=float(app.conf.em_bright_ns_max_mass),
                      eos=app.conf.em_bright_eos)
    payload = {key: result[key] for key in ('HasNS', 'HasRemnant')}
    note = ('' if result['remnant_mass'] is None else
            f'; remnant mass {result["remnant_mass"]:.3g} M☉ '
            f'(EOS {app.conf.em_bright_eos})')
    message = (f'Source classification from the template: '
               f'HasNS {payload["HasNS"]:.0f}, '
               f'HasRemnant {payload["HasRemnant"]:.0f}{note}')
    gracedb.write_json_with_label(graceid, FILENAME, payload, message, TAGS,
                                  LABEL)
    log.info('%s: %s', graceid, message)
    return payload
