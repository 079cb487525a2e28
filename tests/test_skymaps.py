"""Sky-map products: the numbers, images and flattened maps, in-process (the
tasks are tested in test_products.py)."""
import gzip
import io

import numpy as np
import pytest
from astropy.io import fits

from gwcelery import skymap_products
from gwcelery.tasks import skymaps

from .fixtures.products import numbers, png_size, without_distance

# -- numbers -----------------------------------------------------------------

def test_credible_areas_agree_with_crossmatch(skymap_bytes):
    from ligo.skymap.io import read_sky_map
    from ligo.skymap.postprocess import crossmatch

    numbers = skymap_products.annotation(skymap_bytes)
    # Without the distance layers, whose volumes crossmatch would compute
    # for seconds.
    table = read_sky_map(io.BytesIO(skymap_bytes), moc=True)[
        'UNIQ', 'PROBDENSITY']
    area_50, area_90 = crossmatch(table, contours=(0.5, 0.9)).contour_areas
    assert numbers['area_50'] == pytest.approx(area_50, rel=1e-9)
    assert numbers['area_90'] == pytest.approx(area_90, rel=1e-9)
    assert 5 < numbers['area_50'] < numbers['area_90'] < 200
    assert numbers['objid'] == 'G1'
    assert numbers['instruments'] == ['H1', 'L1', 'V1']


def test_distance_moments_by_numerical_integration(skymap_bytes):
    """Mean and standard deviation of the all-sky distance posterior,
    integrated on a grid from the per-pixel ansatz
    p(r | pixel) = DISTNORM r² N(r; DISTMU, DISTSIGMA)."""
    from ligo.skymap import moc
    from ligo.skymap.io import read_sky_map

    table = read_sky_map(io.BytesIO(skymap_bytes), moc=True, distances=True)
    prob = table['PROBDENSITY'] * moc.uniq2pixarea(table['UNIQ'])
    r = np.linspace(0, 600, 6001)
    pdf = np.zeros_like(r)
    for i in range(0, len(table), 1000):
        s = slice(i, i + 1000)
        mu = np.asarray(table['DISTMU'][s])[:, None]
        sigma = np.asarray(table['DISTSIGMA'][s])[:, None]
        norm = np.asarray(table['DISTNORM'][s])[:, None]
        ansatz = norm * r ** 2 * np.exp(-0.5 * ((r - mu) / sigma) ** 2) / (
            sigma * np.sqrt(2 * np.pi))
        pdf += np.sum(np.asarray(prob[s])[:, None] * ansatz, axis=0)
    pdf /= np.trapezoid(pdf, r)
    mean = np.trapezoid(r * pdf, r)
    std = np.sqrt(np.trapezoid((r - mean) ** 2 * pdf, r))
    numbers = skymap_products.annotation(skymap_bytes)
    assert numbers['distmean'] == pytest.approx(mean, rel=1e-3)
    assert numbers['diststd'] == pytest.approx(std, rel=1e-3)
    # And BAYESTAR's header values of the original map, before coarsening.
    header = fits.getheader(io.BytesIO(skymap_bytes), 1)
    assert numbers['distmean'] == pytest.approx(header['DISTMEAN'], rel=0.01)


def test_flat_map_gives_the_same_numbers(skymap_bytes):
    # The test map's finest order is 6: flattening at nside 64 loses nothing.
    flat = skymap_products.flatten(skymap_bytes, nside=64)
    assert numbers(flat) == pytest.approx(numbers(skymap_bytes))


def test_map_without_distance(skymap_bytes):
    burst = without_distance(skymap_bytes)
    numbers = skymap_products.annotation(burst)
    assert numbers['distmean'] is None and numbers['diststd'] is None
    assert numbers['area_90'] == pytest.approx(
        skymap_products.annotation(skymap_bytes)['area_90'])
    with pytest.raises(skymap_products.NoDistanceError):
        skymap_products.plot_volume(burst, dpi=20)


@pytest.mark.parametrize('data', [
    b'', b'not a FITS file', gzip.compress(b'not a FITS file'),
    b'\x1f\x8b\x08garbage'])
def test_malformed_input_is_a_value_error(data):
    with pytest.raises(ValueError):
        skymap_products.annotation(data)


def test_fits_without_sky_map_is_a_value_error():
    out = io.BytesIO()
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(
        [fits.Column(name='X', format='D', array=np.ones(3))])]).writeto(out)
    with pytest.raises(ValueError):
        skymap_products.annotation(out.getvalue())


@pytest.mark.parametrize('area,text', [
    (0.345678, '0.346'), (34.5678, '34.6'), (345.678, '346'),
    (34567.8, '34,568')])
def test_format_area(area, text):
    assert skymap_products.format_area(area) == text


def test_header_html_escapes_values(skymap_bytes):
    hdus = fits.open(io.BytesIO(skymap_bytes))
    hdus[1].header['OBJECT'] = '<script>alert(1)</script>'
    out = io.BytesIO()
    hdus.writeto(out)
    text = skymap_products.header_html(out.getvalue())
    assert text.startswith('<table>') and text.endswith('</table>')
    assert '<script>' not in text
    assert '&lt;script&gt;alert(1)&lt;/script&gt;' in text
    assert '<td>DISTMEAN</td>' in text


def test_product_names():
    assert skymaps.product_names('bayestar.multiorder.fits,3') == {
        'allsky': 'bayestar.png', 'volume': 'bayestar.volume.png',
        'flat': 'bayestar.fits.gz'}
    assert skymaps.product_names('cwb.fits.gz')['allsky'] == 'cwb.png'


# -- images and flattened maps -----------------------------------------------

def test_plot_allsky(skymap_bytes):
    png = skymap_products.plot_allsky(skymap_bytes, dpi=50)
    assert png_size(png) == (400, 300)
    # Something is drawn: more than one colour.
    from matplotlib.image import imread
    pixels = imread(io.BytesIO(png))
    assert len(np.unique(pixels.reshape(-1, pixels.shape[-1]), axis=0)) > 10


def test_plot_volume(skymap_bytes):
    png = skymap_products.plot_volume(skymap_bytes, dpi=20)
    assert png_size(png) == (70, 70)


def test_flatten(skymap_bytes):
    flat = skymap_products.flatten(skymap_bytes, nside=32)
    assert flat[:2] == b'\x1f\x8b'
    with fits.open(io.BytesIO(gzip.decompress(flat))) as hdus:
        header, data = hdus[1].header, hdus[1].data
        assert (header['ORDERING'], header['NSIDE']) == ('NESTED', 32)
        assert len(data) == 12 * 32 ** 2
        assert data['PROB'].sum() == pytest.approx(1)
        assert {'DISTMU', 'DISTSIGMA', 'DISTNORM'} <= set(data.names)
        assert header['OBJECT'] == 'G1'
    with pytest.raises(ValueError, match='power of 2'):
        skymap_products.flatten(skymap_bytes, nside=100)
