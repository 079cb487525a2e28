"""What people look at beside a sky map: its credible areas and distance, its
header, an all-sky plot, a volume rendering and a flattened copy.

Every function takes the content (bytes) of a HEALPix FITS sky map —
multi-order (``NUNIQ``) as BAYESTAR writes it, or flat — and returns plain
values or bytes; it talks to nothing. :mod:`gwcelery.tasks.skymaps` runs
them as tasks and uploads what they make to GraceDb. They are drawn with
ligo.skymap's plotting API on matplotlib's Agg canvas, without pyplot, so
they keep no state between calls and need no display.

==========================  =================================================
:func:`annotation`          50 % and 90 % credible areas (deg²), distance
                            mean and standard deviation (Mpc)
:func:`header_html`         the sky map's FITS header as an HTML table
:func:`plot_allsky`         Mollweide projection with the 50 % and 90 %
                            contours, as ``ligo-skymap-plot --annotate
                            --contour 50 90`` draws it (PNG)
:func:`plot_volume`         three orthogonal projections of the 3D
                            posterior and the marginal distance, as
                            ``ligo-skymap-plot-volume --annotate`` (PNG)
:func:`flatten`             the map rasterized on one HEALPix resolution,
                            NESTED, gzip-compressed, as
                            ``ligo-skymap-flatten``
==========================  =================================================

Malformed input raises :class:`ValueError`.
"""
import gzip
import html
import io
import os
import tempfile

import numpy as np

__all__ = ('CREDIBLE_LEVELS', 'NoDistanceError', 'read', 'annotation', 'format_area',
           'header_html', 'plot_allsky', 'plot_volume', 'flatten')

#: Credible levels of the areas and contours (percent).
CREDIBLE_LEVELS = (50, 90)

_SR_TO_DEG2 = (180 / np.pi) ** 2


class NoDistanceError(ValueError):
    """The sky map has no (finite) distance layers: there is no volume to
    render."""


def _hdus(filecontents):
    from astropy.io import fits

    if filecontents[:2] == b'\x1f\x8b':
        try:
            filecontents = gzip.decompress(filecontents)
        except (OSError, EOFError) as e:
            raise ValueError(f'corrupt gzip sky map: {e}') from None
    try:
        hdus = fits.open(io.BytesIO(filecontents))
        hdus.verify('exception')
    except Exception as e:  # astropy raises many kinds for a bad file
        raise ValueError(f'not a FITS file: {e}') from None
    if len(hdus) < 2:
        raise ValueError('FITS file has no sky-map table extension')
    return hdus


def read(filecontents, distances=True):
    """The sky map as a multi-order :class:`astropy.table.Table` (columns
    ``UNIQ``, ``PROBDENSITY`` and, if present, ``DISTMU``, ``DISTSIGMA``,
    ``DISTNORM``; header values in ``meta``). A flat map is converted."""
    from ligo.skymap import moc
    from ligo.skymap.io import read_sky_map

    hdus = _hdus(filecontents)
    try:
        table = read_sky_map(hdus, moc=True, distances=distances)
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f'not a HEALPix sky map: {e}') from None
    if 'UNIQ' not in table.colnames:
        table = _multiorder(table)
    if 'PROBDENSITY' not in table.colnames or not len(table):
        raise ValueError('sky map has no probability column')
    area = moc.uniq2pixarea(table['UNIQ'])
    if not np.all(np.isfinite(table['PROBDENSITY'])) or np.any(
            table['PROBDENSITY'] < 0) or not np.sum(
            table['PROBDENSITY'] * area) > 0:
        raise ValueError('sky map probabilities are not finite and positive')
    return table


def _multiorder(table):
    """A flat map (as ligo.skymap's reader leaves it) as a multi-order
    one."""
    import healpy as hp
    from ligo.skymap.bayestar import derasterize

    if 'PROB' not in table.colnames:
        raise ValueError('flat sky map has no PROB column')
    try:
        hp.npix2nside(len(table))
    except ValueError:
        raise ValueError(f'{len(table)} is not a number of HEALPix pixels'
                         ) from None
    if not table.meta.get('nest', False):
        for name in table.colnames:
            table[name] = hp.reorder(np.asarray(table[name]), r2n=True)
    return derasterize(table)


def _has_distance(table):
    return {'DISTMU', 'DISTSIGMA', 'DISTNORM'} <= set(table.colnames)


def _credible_areas(table, levels):
    """Areas (deg²) of the smallest regions holding ``levels`` (fractions)
    of the probability: pixels are added from the densest down, and the
    cumulative area is interpolated linearly within the last pixel."""
    from ligo.skymap import moc

    order = np.argsort(table['PROBDENSITY'])[::-1]
    area = moc.uniq2pixarea(table['UNIQ'])[order]
    prob = np.asarray(table['PROBDENSITY'])[order] * area
    total = prob.sum()
    cumulative_prob = np.concatenate(([0.0], np.cumsum(prob) / total))
    cumulative_area = np.concatenate(([0.0], np.cumsum(area)))
    return np.interp(levels, cumulative_prob, cumulative_area) * _SR_TO_DEG2


def _distance_moments(table):
    """Mean and standard deviation (Mpc) of the distance over the pixels
    whose distance parameters are finite (BAYESTAR marks pixels without a
    distance estimate with an infinite DISTMU), their probabilities
    renormalized; ``None`` if no pixel has one."""
    from ligo.skymap import moc
    from ligo.skymap.distance import parameters_to_marginal_moments

    prob = np.asarray(table['PROBDENSITY'] * moc.uniq2pixarea(table['UNIQ']))
    finite = np.isfinite(table['DISTMU']) & np.isfinite(table['DISTSIGMA'])
    if not prob[finite].sum() > 0:
        return None
    mean, std = parameters_to_marginal_moments(
        prob[finite] / prob[finite].sum(), np.asarray(table['DISTMU'])[finite],
        np.asarray(table['DISTSIGMA'])[finite])
    if not (np.isfinite(mean) and np.isfinite(std)):
        return None
    return float(mean), float(std)


def annotation(filecontents):
    """Numbers that summarize a sky map.

    Returns
    -------
    dict
        ``area_50`` and ``area_90`` (deg²); ``distmean`` and ``diststd``
        (Mpc, the posterior mean and standard deviation of the luminosity
        distance over the whole sky), ``None`` when the map has no distance
        layers; ``objid`` and ``instruments`` from the header, or ``None``.
    """
    table = read(filecontents)
    areas = _credible_areas(table, np.divide(CREDIBLE_LEVELS, 100))
    result = {f'area_{level}': float(area)
              for level, area in zip(CREDIBLE_LEVELS, areas)}
    result['distmean'] = result['diststd'] = None
    if _has_distance(table):
        moments = _distance_moments(table)
        if moments is not None:
            result['distmean'], result['diststd'] = moments
    instruments = table.meta.get('instruments')
    result['objid'] = table.meta.get('objid')
    result['instruments'] = sorted(instruments) if instruments else None
    return result


def format_area(area):
    """An area for people: three significant figures up to 100, whole
    numbers with thousands separators above."""
    if area <= 100:
        return np.format_float_positional(area, precision=3,
                                          fractional=False, trim='-')
    return f'{int(round(area)):,d}'


def header_html(filecontents):
    """The sky map's header (its table extension) as an HTML table of
    keyword, value and comment; every value is escaped."""
    hdus = _hdus(filecontents)
    rows = []
    for card in hdus[1].header.cards:
        rows.append('<tr><td>{}</td><td>{}</td><td>{}</td></tr>'.format(
            *(html.escape(str(x)) for x in (card.keyword, card.value,
                                            card.comment))))
    return ('<table><tr><th>keyword</th><th>value</th><th>comment</th></tr>'
            + ''.join(rows) + '</table>')


def _figure(width, height, dpi):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    # Registers the astro projections and the cylon colour map.
    import ligo.skymap.plot  # noqa: F401

    figure = Figure(figsize=(width, height), dpi=dpi)
    FigureCanvasAgg(figure)
    return figure


def _png(figure, dpi):
    buffer = io.BytesIO()
    figure.savefig(buffer, format='png', dpi=dpi)
    return buffer.getvalue()


def _event_lines(table):
    lines = []
    if table.meta.get('objid'):
        lines.append(f'event ID: {table.meta["objid"]}')
    if table.meta.get('instruments'):
        lines.append('instruments: '
                     + ', '.join(sorted(table.meta['instruments'])))
    return lines


def plot_allsky(filecontents, dpi=300):
    """A Mollweide projection in equatorial coordinates with the 50 % and
    90 % credible contours and the event ID, instruments and credible
    areas written in the corner (8 × 6 inches, PNG)."""
    from astropy.table import Table
    from ligo.skymap import moc
    from ligo.skymap.plot import outline_text
    from ligo.skymap.postprocess import find_greedy_credible_levels

    table = read(filecontents, distances=False)
    figure = _figure(8, 6, dpi)
    ax = figure.add_subplot(projection='astro mollweide')
    ax.grid()
    prob = table['PROBDENSITY'] * moc.uniq2pixarea(table['UNIQ'])
    levels = 100 * find_greedy_credible_levels(prob / prob.sum(),
                                               table['PROBDENSITY'])
    # The plotting methods read a table's UNIQ column and its second one.
    contours = ax.contour_hpx(
        (Table({'UNIQ': table['UNIQ'], 'CLS': levels}), 'ICRS'),
        colors='k', linewidths=0.5, levels=CREDIBLE_LEVELS,
        order='nearest-neighbor')
    ax.clabel(contours, fmt='%g%%', fontsize=6, inline=True)
    outline_text(ax)
    lines = _event_lines(table) + [
        f'{level}% area: {format_area(a)} deg²' for level, a in zip(
            CREDIBLE_LEVELS, _credible_areas(
                table, np.divide(CREDIBLE_LEVELS, 100)))]
    ax.text(1, 1, '\n'.join(lines), transform=ax.transAxes, ha='right')
    density = Table({'UNIQ': table['UNIQ'],
                     'PROBDENSITY': table['PROBDENSITY'] / _SR_TO_DEG2})
    ax.imshow_hpx((density, 'ICRS'), vmin=0, order='nearest-neighbor',
                  cmap='cylon')
    return _png(figure, dpi)


# The three faces of the volume rendering: axes of the map's principal
# frame shown on each, and their cell in the 2 × 2 grid.
_FACES = ((1, 0, (0, 0)), (0, 2, (1, 1)), (1, 2, (1, 0)))


def plot_volume(filecontents, dpi=100):
    """Three orthogonal projections of the 3D posterior (in the frame of
    its principal axes, out to 2.5 standard deviations beyond the mean
    distance), and the all-sky marginal distance distribution with the
    event ID, instruments and distance written above it (3.5 × 3.5
    inches, PNG).

    The rendering costs grows with ``dpi`` squared: ~2 minutes at 100 dpi
    on two cores; a tiny ``dpi`` (20) takes a second.

    Raises
    ------
    NoDistanceError
        The map has no distance layers.
    """
    from matplotlib import gridspec
    from ligo.skymap import moc
    from ligo.skymap.distance import (marginal_pdf, principal_axes_moc,
                                      volume_render)
    from ligo.skymap.plot import marker

    table = read(filecontents)
    if not _has_distance(table):
        raise NoDistanceError('the sky map has no distance layers')
    moments = _distance_moments(table)
    if moments is None:
        raise NoDistanceError('the sky map has no finite distances')
    mean, std = moments
    prob = table['PROBDENSITY'] * moc.uniq2pixarea(table['UNIQ'])
    prob = prob / prob.sum()
    max_distance = mean + 2.5 * std
    rotation = np.ascontiguousarray(principal_axes_moc(table))

    figure = _figure(3.5, 3.5, dpi)
    grid = gridspec.GridSpec(2, 2, figure=figure, left=0.01, right=0.99,
                             bottom=0.01, top=0.99, wspace=0.05,
                             hspace=0.05)
    width = max(int(dpi * 3.5 / 2), 2)
    s = np.linspace(-max_distance, max_distance, width)
    xx, yy = np.meshgrid(s, s)
    extent = [-max_distance, max_distance, -max_distance, max_distance]
    for axis0, axis1, cell in _FACES:
        density = volume_render(xx.ravel(), yy.ravel(), max_distance, axis0,
                                axis1, rotation, table).reshape(xx.shape)
        ax = figure.add_subplot(grid[cell], aspect=1)
        ax.imshow(density, origin='lower', extent=extent, cmap='cylon')
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlim(extent[:2])
        ax.set_ylim(extent[2:])
        ax.plot([0], [0], marker=marker.earth, markersize=5,
                markerfacecolor='none', markeredgecolor='black',
                markeredgewidth=0.75)
        if cell == (1, 0):
            ax.invert_xaxis()
    # Scale bar, a quarter of the last face's width.
    ax.plot([0.0625, 0.3125], [0.0625, 0.0625], color='black', linewidth=1,
            transform=ax.transAxes)
    ax.text(0.0625, 0.0625, f'{int(round(0.5 * max_distance)):d} Mpc',
            fontsize=8, transform=ax.transAxes, verticalalignment='bottom')

    inner = gridspec.GridSpecFromSubplotSpec(5, 5, grid[0, 1])
    ax = figure.add_subplot(inner[1:-1, 1:-1])
    d = np.linspace(0, max_distance)
    ax.fill_between(d, marginal_pdf(d, prob, table['DISTMU'],
                                    table['DISTSIGMA'], table['DISTNORM']),
                    alpha=0.5)
    ax.set_xticks([0, max_distance])
    ax.set_xticklabels(['0', f'{int(round(max_distance)):d}\nMpc'],
                       fontsize=9)
    ax.set_yticks([])
    ax.set_xlim(0, max_distance)
    ax.set_ylim(0, ax.get_ylim()[1])
    lines = _event_lines(table) + [
        f'distance: {int(round(mean))}±{int(round(std))} Mpc']
    ax.text(0, 1, '\n'.join(lines), transform=ax.transAxes, fontsize=7,
            ha='left', va='bottom', clip_on=False)
    return _png(figure, dpi)


def flatten(filecontents, nside=None):
    """The map on a single HEALPix resolution, NESTED order, as a
    gzip-compressed FITS file (what tools that do not read multi-order maps
    need).

    Parameters
    ----------
    nside : int, optional
        Resolution of the output (a power of 2); by default the map's finest
        resolution. Downsampling keeps the distance moments.
    """
    import astropy_healpix as ah
    from ligo.skymap.bayestar import rasterize
    from ligo.skymap.io import write_sky_map

    table = read(filecontents)
    order = None
    if nside is not None:
        if not (isinstance(nside, int) and nside > 0
                and nside & (nside - 1) == 0):
            raise ValueError(f'nside must be a power of 2, not {nside!r}')
        order = int(ah.nside_to_level(nside))
    flat = rasterize(table, order=order)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, 'skymap.fits.gz')
        write_sky_map(path, flat, nest=True)
        with open(path, 'rb') as f:
            return f.read()
