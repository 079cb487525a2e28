"""Sky maps of external triggers, made from the position in their notice.

A GCN notice gives a position and an error radius. For the space-time
coincidence FAR, RAVEN needs the trigger's localization as a sky map (or,
for a well-localized trigger, a point):

* error radius under :data:`POINT_RADIUS` degrees (Swift BAT, INTEGRAL):
  the position is used as a point;
* up to :data:`MAX_RADIUS` degrees (Fermi GBM): a Gaussian of that width
  on a HEALPix grid (:func:`gaussian_skymap`);
* beyond, or without a position (SNEWS gives 360°): no localization, and
  only the temporal coincidence FAR is computed.
"""
import gzip
import io
import math

__all__ = ('POINT_RADIUS', 'MAX_RADIUS', 'NSIDE', 'FILENAME',
           'localization', 'gaussian_skymap')

#: Error radius (deg) below which a position counts as a point.
POINT_RADIUS = 1.0

#: Error radius (deg) from which a position says nothing useful.
MAX_RADIUS = 90.0

#: HEALPix resolution of the Gaussian maps, whose pixels (0.9°) are finer
#: than any error radius that gets a map.
NSIDE = 64

#: Name of the sky map file uploaded to an external event.
FILENAME = 'external_skymap.fits.gz'


def localization(grb):
    """``'point'``, ``'map'`` or ``None`` for an event's ``GRB`` attributes."""
    ra, dec, radius = (grb.get(key) for key in ('ra', 'dec', 'error_radius'))
    if ra is None or dec is None or radius is None or not all(
            math.isfinite(float(v)) for v in (ra, dec, radius)):
        return None
    if radius >= MAX_RADIUS:
        return None
    return 'point' if radius < POINT_RADIUS else 'map'


def gaussian_skymap(ra, dec, radius, nside=NSIDE, objid=None):
    """A gzipped FITS sky map (nested HEALPix) of a Gaussian localization.

    Parameters
    ----------
    ra, dec : float
        Centre (deg).
    radius : float
        Standard deviation (deg): the notice's 1σ error radius.
    nside : int
    objid : str, optional
        Written as the map's ``OBJECT``.

    Returns
    -------
    bytes
    """
    import healpy as hp
    import numpy as np
    from ligo.skymap.io import fits

    npix = hp.nside2npix(nside)
    x, y, z = hp.pix2vec(nside, np.arange(npix), nest=True)
    cx, cy, cz = hp.ang2vec(ra, dec, lonlat=True)
    distance = np.arccos(np.clip(x * cx + y * cy + z * cz, -1.0, 1.0))
    prob = np.exp(-0.5 * (distance / math.radians(radius)) ** 2)
    prob /= prob.sum()
    buffer = io.BytesIO()
    fits.write_sky_map(buffer, prob, nest=True, objid=objid)
    return gzip.compress(buffer.getvalue(), mtime=0)
