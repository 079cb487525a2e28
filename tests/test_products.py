"""The sky-map product and classification tasks on real workers (a general
and an openmp worker, as the deployment runs them) against the session's
local GraceDb, through the real ligo-gracedb client."""
import json

import pytest

from gwcelery.tasks import em_bright, p_astro, skymaps

from .fixtures.products import (SKYMAP_FILENAME as FILENAME, numbers,
                                png_size, upload_cbc, without_distance)

pytestmark = pytest.mark.slow


def _log(gracedb, graceid):
    return gracedb.logs(graceid).json()['log']


def _file(gracedb, graceid, name):
    return gracedb.files(graceid, name).read()


def _labels(gracedb, graceid):
    return [label['name']
            for label in gracedb.labels(graceid).json()['labels']]


def _upload_map(gracedb, graceid, skymap_bytes):
    gracedb.write_log(graceid, 'BAYESTAR sky map', filename=FILENAME,
                      filecontents=skymap_bytes, tag_name=['sky_loc'])


# -- sky-map products --------------------------------------------------------

def test_annotate_uploads_every_product(products_worker, openmp_worker,
                                        gracedb, skymap_bytes):
    graceid = upload_cbc(gracedb)['graceid']
    _upload_map(gracedb, graceid, skymap_bytes)
    results = skymaps.annotate(skymap_bytes, f'{FILENAME},0',
                               graceid).delay().get(timeout=120)
    comment, allsky, volume = results
    assert comment['filename'] == ''
    assert '50 % area 10.3 deg²' in comment['comment']
    assert 'distance 110 ± 27 Mpc' in comment['comment']
    assert '<td>DISTMEAN</td>' in comment['comment']
    assert f'/api/events/{graceid}/files/{FILENAME},0' in comment['comment']
    assert allsky['filename'] == 'bayestar.png'
    assert volume['filename'] == 'bayestar.volume.png'
    for entry in results:
        assert entry['tag_names'] == ['sky_loc']
    # skymaps_allsky_dpi is 100 and skymaps_volume_dpi 20 in the test
    # configuration.
    assert png_size(_file(gracedb, graceid, 'bayestar.png')) == (800, 600)
    assert png_size(_file(gracedb, graceid, 'bayestar.volume.png')) == (
        70, 70)
    assert 'skymaps.plot_volume' in openmp_worker.log()


def test_products_download_the_map_when_given_none(products_worker, gracedb,
                                                   skymap_bytes):
    graceid = upload_cbc(gracedb)['graceid']
    _upload_map(gracedb, graceid, skymap_bytes)
    entry = skymaps.flatten.delay(
        None, FILENAME, graceid, ('sky_loc', 'public')).get(timeout=60)
    assert entry['filename'] == 'bayestar.fits.gz'
    assert entry['tag_names'] == ['sky_loc', 'public']
    assert 'nside 64' in entry['comment']
    flat = _file(gracedb, graceid, 'bayestar.fits.gz')
    assert numbers(flat) == pytest.approx(numbers(skymap_bytes))


def test_volume_of_a_map_without_distance_says_so(products_worker,
                                                  openmp_worker, gracedb,
                                                  skymap_bytes):
    graceid = upload_cbc(gracedb)['graceid']
    entry = skymaps.plot_volume.delay(
        without_distance(skymap_bytes), 'cwb.multiorder.fits',
        graceid).get(timeout=60)
    assert entry['filename'] == ''
    assert 'no distance layers' in entry['comment']


def test_bad_sky_map_fails_and_uploads_nothing(products_worker, gracedb):
    graceid = upload_cbc(gracedb)['graceid']
    before = len(_log(gracedb, graceid))
    with pytest.raises(ValueError, match='not a FITS file'):
        skymaps.plot_allsky.delay(b'junk', FILENAME, graceid).get(timeout=60)
    assert len(_log(gracedb, graceid)) == before


# -- classification ----------------------------------------------------------

@pytest.mark.parametrize('module,template,expected', [
    (em_bright, dict(mass1=8.0, mass2=1.4, spin1z=0.9),
     {'HasNS': 1.0, 'HasRemnant': 1.0}),
    (p_astro, dict(mass1=1.4, mass2=1.4),
     {'BNS': 0.975, 'NSBH': 0.0, 'BBH': 0.0, 'Terrestrial': 0.025})])
def test_classification_writes_file_then_label(products_worker, gracedb,
                                               module, template, expected):
    event = upload_cbc(gracedb, pipeline='pycbc', far=1e-9, snr=12.0,
                       **template)
    graceid = event['graceid']
    result = module.classify_event.delay(event).get(timeout=60)
    assert result == pytest.approx(expected, abs=1e-3)
    assert json.loads(_file(gracedb, graceid, module.FILENAME)) == result
    entry, = [e for e in _log(gracedb, graceid)
              if e['filename'] == module.FILENAME]
    assert entry['tag_names'] == list(module.TAGS)
    assert module.LABEL in _labels(gracedb, graceid)


@pytest.mark.parametrize('module', [em_bright, p_astro])
def test_classification_of_a_bad_event_fails_loudly(products_worker, gracedb,
                                                    module):
    event = upload_cbc(gracedb)
    del event['extra_attributes']['SingleInspiral']
    with pytest.raises(ValueError, match='no template masses'):
        module.classify_event.delay(event).get(timeout=60)
    assert all(e['filename'] != module.FILENAME
               for e in _log(gracedb, event['graceid']))
    assert module.LABEL not in _labels(gracedb, event['graceid'])
