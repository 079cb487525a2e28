"""The local GraceDb's pages in a real browser: headless Chromium loads the
superevent list, a superevent with its sky map and notice, and an event
with its files; every image has loaded (``naturalWidth`` > 0) and every
link answers HTTP 200. Screenshots are kept in the test's folder."""
import shutil

import pytest
import requests

from gwcelery import skymap_products

from .browser import Chromium
from .conftest import require_program
from .fixtures.products import SKYMAP_FILENAME, upload_cbc

pytestmark = pytest.mark.slow

IMAGES = """Array.from(document.images, i => ({
    src: i.currentSrc, complete: i.complete, width: i.naturalWidth}))"""
LINKS = 'Array.from(document.links, a => a.href)'


@pytest.fixture
def browser(tmp_path):
    binary = require_program(shutil.which('chromium'), 'chromium')
    profile = tmp_path / 'chromium-profile'
    profile.mkdir()
    chromium = Chromium(binary, profile)
    yield chromium
    chromium.close()


@pytest.fixture
def candidate(gracedb, skymap_bytes):
    """A CBC event with its sky map and plot, in a superevent with a
    preliminary notice."""
    event = upload_cbc(gracedb)
    graceid = event['graceid']
    png = skymap_products.plot_allsky(skymap_bytes, dpi=40)
    gracedb.write_log(graceid, 'sky map', filename=SKYMAP_FILENAME,
                      filecontents=skymap_bytes, tag_name=['sky_loc'])
    gracedb.write_log(graceid, 'all-sky plot', filename='bayestar.png',
                      filecontents=png, tag_name=['sky_loc'])
    gps = event['gpstime']
    sid = gracedb.create_superevent(gps - 1, gps, gps + 1, graceid).json()[
        'superevent_id']
    gracedb.write_log(sid, 'sky map', filename=SKYMAP_FILENAME,
                      filecontents=skymap_bytes, tag_name=['sky_loc'])
    gracedb.write_log(sid, 'all-sky plot', filename='bayestar.png',
                      filecontents=png, tag_name=['sky_loc'])
    gracedb.create_voevent(sid, 'preliminary', skymap_type='bayestar',
                           skymap_filename=SKYMAP_FILENAME, ProbHasNS=0.9,
                           BNS=0.95, Terrestrial=0.05)
    return graceid, sid


def check_page(browser, url, screenshot):
    """Load a page; every image loaded and every link answers 200.
    Returns the page's text."""
    browser.load(url)
    images = browser.evaluate(IMAGES)
    for image in images:
        assert image['complete'] and image['width'] > 0, image
    links = sorted(set(browser.evaluate(LINKS)))
    assert links
    with requests.Session() as session:
        for link in links:
            response = session.get(link, timeout=30)
            assert response.status_code == 200, (link, response.status_code)
    browser.screenshot(screenshot)
    return browser.evaluate('document.body.innerText'), images, links


def test_pages_in_a_browser(browser, candidate, gracedb_url, tmp_path):
    graceid, sid = candidate
    site = gracedb_url[:-len('api/')]

    text, _, links = check_page(browser, site, tmp_path / 'index.png')
    assert sid in text and graceid in text
    assert f'{site}superevents/{sid}/view/' in links

    text, images, links = check_page(
        browser, f'{site}superevents/{sid}/view/', tmp_path / 'superevent.png')
    assert any('bayestar.png' in i['src'] and i['width'] > 200
               for i in images)
    assert f'{sid}-1-Preliminary.xml' in text
    assert f'{site}events/{graceid}/view/' in links

    text, images, links = check_page(
        browser, f'{site}events/{graceid}/view/', tmp_path / 'event.png')
    assert 'coinc.xml' in text and SKYMAP_FILENAME in text
    assert any(link.endswith(f'/files/{SKYMAP_FILENAME}') for link in links)
    assert any('bayestar.png' in i['src'] for i in images)
