"""Sky-map products as tasks: annotation, all-sky plot, volume rendering and
flattened map, each uploaded to GraceDb.

Each product task takes ``(filecontents, filename, graceid, tags=TAGS)``:
the content of a FITS sky map (or ``None`` to download ``filename`` from
``graceid`` first), the name it has in GraceDb (``bayestar.multiorder.fits``,
or versioned ``bayestar.multiorder.fits,0``), the event or superevent to
write to, and the tags of the log entry. It makes its product with
:mod:`gwcelery.skymap_products` and replaces itself with
:func:`gwcelery.tasks.gracedb.upload`, so that a failed upload is retried
without making the product again; its result is the new log entry's JSON.

=======================  =====================  ==============================
task                     uploads                queue
=======================  =====================  ==============================
:func:`annotate_fits`    a log comment: 50 %/   ``celery``
                         90 % areas, distance,
                         the FITS header
:func:`plot_allsky`      ``{base}.png``         ``celery``
:func:`plot_volume`      ``{base}.volume.png``  ``openmp``, lowest priority
:func:`flatten`          ``{base}.fits.gz``     ``celery``
=======================  =====================  ==============================

``{base}`` is the file name without its version and its ``.multiorder.fits``
(or ``.fits``, ``.fits.gz``) ending: ``bayestar``. The default tags are
:data:`TAGS` (``sky_loc``, GraceDb's tag for sky localization); a caller
that writes public products passes ``('sky_loc', 'public')``.
:func:`annotate` bundles the first three as a group; :func:`flatten` is for
consumers that cannot read multi-order maps, and none of these is on the
way to the first notice.

Priority of the volume rendering: Redis has no native message priorities;
kombu's Redis transport keeps one list per priority step
(:data:`~gwcelery.conf.broker_transport_options` ``priority_steps``) and a
worker pops the lists in the order of the steps, so **0 is served first and
9 last** (the reverse of RabbitMQ). Tasks sent without a priority count as
0. :func:`plot_volume` is sent with priority 9, so a localization waiting
on the ``openmp`` queue goes before every waiting rendering; a rendering
already running is not interrupted.
"""
import logging
import re

from .. import app, skymap_products
from . import gracedb

__all__ = ('TAGS', 'VOLUME_PRIORITY', 'product_names', 'annotate_fits',
           'plot_allsky', 'plot_volume', 'flatten', 'annotate')

log = logging.getLogger(__name__)

#: Default tags of the log entries.
TAGS = ('sky_loc',)

#: Celery priority of :func:`plot_volume` (Redis: 9 is served last).
VOLUME_PRIORITY = 9

_ENDINGS = ('.multiorder.fits', '.fits.gz', '.fits')

# Superevent ids (S190425z, MS…, TS…, and GW… once confirmed); anything
# else is an event.
_SUPEREVENT = re.compile(r'^(?:[MT]?S\d{6}[a-z]+|GW\d{6}.*)$')


def product_names(filename):
    """``{'allsky': 'bayestar.png', 'volume': 'bayestar.volume.png',
    'flat': 'bayestar.fits.gz'}`` for ``bayestar.multiorder.fits`` (with or
    without a version)."""
    name = filename.rpartition(',')[0] if re.search(r',\d+$', filename) \
        else filename
    for ending in _ENDINGS:
        if name.endswith(ending):
            name = name[:-len(ending)]
            break
    return {'allsky': f'{name}.png', 'volume': f'{name}.volume.png',
            'flat': f'{name}.fits.gz'}


def _link(graceid, filename):
    """An HTML link to ``filename`` of ``graceid``, relative to GraceDb's
    site root."""
    kind = 'superevents' if _SUPEREVENT.match(graceid) else 'events'
    return (f'<a href="/api/{kind}/{graceid}/files/{filename}">'
            f'{filename}</a>')


_PARAMETERS = '''

    Parameters
    ----------
    filecontents : bytes or None
        The sky map's FITS file; ``None`` to download ``filename`` first.
    filename : str
        Its name in GraceDb, with or without a version (``,N``).
    graceid : str
        The event or superevent whose log gets the product.
    tags : tuple of str
        Tags of the log entry.

    Returns
    -------
    dict
        The new log entry's JSON (the task replaces itself with
        :func:`gwcelery.tasks.gracedb.upload`).
    '''


def _product(**options):
    """Make a function ``make(filecontents, filename, graceid) →
    (content, name, message)`` into a product task (see the module's
    documentation)."""
    def decorate(make):
        def task(self, filecontents, filename, graceid, tags=TAGS):
            # On a worker, replace() raises; in eager mode (gwcelery debug)
            # it runs the new signature and returns its result.
            if filecontents is None:
                return self.replace(gracedb.download.si(filename, graceid)
                                    | self.s(filename, graceid, tags))
            content, name, message = make(filecontents, filename, graceid)
            return self.replace(gracedb.upload.si(
                content, name, graceid, message, list(tags)))
        task.__name__ = task.__qualname__ = make.__name__
        task.__doc__ = make.__doc__.rstrip() + _PARAMETERS
        return app.task(bind=True, shared=False,
                        name=f'{__name__}.{make.__name__}', **options)(task)
    return decorate


@_product()
def annotate_fits(filecontents, filename, graceid):
    """Write the sky map's 50 % and 90 % credible areas, distance and FITS
    header to the log of ``graceid``."""
    numbers = skymap_products.annotation(filecontents)
    summary = ', '.join(
        f'{level} % area {skymap_products.format_area(numbers[key])} deg²'
        for level, key in ((50, 'area_50'), (90, 'area_90')))
    if numbers['distmean'] is not None:
        summary += (f', distance {numbers["distmean"]:.0f} ± '
                    f'{numbers["diststd"]:.0f} Mpc')
    message = (f'<p>Sky map {_link(graceid, filename)}: {summary}.</p>'
               + skymap_products.header_html(filecontents))
    return None, None, message


@_product()
def plot_allsky(filecontents, filename, graceid):
    """Upload a Mollweide projection of the sky map with its 50 % and 90 %
    contours, at :data:`~gwcelery.conf.skymaps_allsky_dpi`."""
    name = product_names(filename)['allsky']
    png = skymap_products.plot_allsky(
        filecontents, dpi=int(app.conf.skymaps_allsky_dpi))
    return (png, name,
            f'Mollweide projection of {_link(graceid, filename)}')


# Acknowledged when done: with the openmp worker's prefetch of one, nothing
# else is reserved while a rendering runs, so what starts next is the
# highest-priority message at that moment.
@_product(queue='openmp', priority=VOLUME_PRIORITY, acks_late=True)
def plot_volume(filecontents, filename, graceid):
    """Upload a volume rendering of the sky map, at
    :data:`~gwcelery.conf.skymaps_volume_dpi`. A map without distance
    layers gets a log comment saying so instead."""
    name = product_names(filename)['volume']
    try:
        png = skymap_products.plot_volume(
            filecontents, dpi=int(app.conf.skymaps_volume_dpi))
    except skymap_products.NoDistanceError as e:
        log.info('No volume rendering of %s of %s: %s', filename, graceid, e)
        return (None, None,
                f'No volume rendering of {_link(graceid, filename)}: {e}')
    return png, name, f'Volume rendering of {_link(graceid, filename)}'


@_product()
def flatten(filecontents, filename, graceid):
    """Upload the sky map flattened to
    :data:`~gwcelery.conf.skymaps_flatten_nside`."""
    nside = app.conf.skymaps_flatten_nside
    name = product_names(filename)['flat']
    resolution = 'full resolution' if nside is None else f'nside {nside}'
    return (skymap_products.flatten(filecontents, nside), name,
            f'Flattened ({resolution}, NESTED) version of '
            f'{_link(graceid, filename)}')


def annotate(filecontents, filename, graceid, tags=TAGS):
    """A group of :func:`annotate_fits`, :func:`plot_allsky` and
    :func:`plot_volume` for one sky map (a signature: call ``.delay()``).
    With ``filecontents=None``, each downloads the file."""
    from celery import group

    args = (filecontents, filename, graceid, tuple(tags))
    return group(annotate_fits.si(*args), plot_allsky.si(*args),
                 plot_volume.si(*args))
