"""The local GraceDb's pages: sky-map images and classification numbers in
headless Chromium, superevents falling back on their preferred event, and
log comments as restricted HTML."""
import json
import re
import shutil
import subprocess
import tempfile

import pytest
import requests

from gwcelery import skymap_products
from gwcelery.localgracedb.htmlsafe import sanitize

from .conftest import require_program
from .fixtures.products import png_size, upload_cbc

P_ASTRO = {'BNS': 0.975, 'NSBH': 0.0, 'BBH': 0.0, 'Terrestrial': 0.025}
EM_BRIGHT = {'HasNS': 1.0, 'HasRemnant': 0.0}


def dump_dom(url):
    """The page's DOM after Chromium loaded it (and every image on it)."""
    chromium = require_program(shutil.which('chromium'), 'chromium')
    with tempfile.TemporaryDirectory() as profile:
        result = subprocess.run(
            [chromium, '--headless', '--no-sandbox', '--disable-gpu',
             '--disable-background-networking', '--disable-component-update',
             '--disable-sync', '--no-first-run', f'--user-data-dir={profile}',
             '--dump-dom', url],
            capture_output=True, text=True, timeout=90)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def table_rows(dom, filename):
    """``{key: value}`` of the classification table of ``filename``."""
    match = re.search(r'<table class="classification" data-file="'
                      + re.escape(filename) + r'">(.*?)</table>', dom, re.S)
    assert match, f'no classification table for {filename}'
    return dict(re.findall(r'<tr><td>([^<]*)</td><td>([^<]*)</td></tr>',
                           match.group(1)))


@pytest.fixture(scope='module')
def allsky_png(skymap_bytes):
    return skymap_products.plot_allsky(skymap_bytes, dpi=40)


@pytest.mark.slow
def test_event_page_shows_sky_map_and_classification(gracedb, gracedb_url,
                                                     allsky_png):
    graceid = upload_cbc(gracedb)['graceid']
    gracedb.write_log(graceid, 'Mollweide projection',
                      filename='bayestar.png', filecontents=allsky_png,
                      tag_name=['sky_loc'])
    for name, payload in (('p_astro.json', P_ASTRO),
                          ('em_bright.json', EM_BRIGHT)):
        gracedb.write_log(graceid, name, filename=name,
                          filecontents=json.dumps(payload).encode())
    root = gracedb_url[:-len('api/')]
    dom = dump_dom(f'{root}events/{graceid}/view/')
    image = f'{gracedb_url}events/{graceid}/files/bayestar.png,0'
    assert f'<img src="{image}" alt="bayestar.png">' in dom
    assert table_rows(dom, 'p_astro.json') == {
        'BNS': '0.975', 'NSBH': '0', 'BBH': '0', 'Terrestrial': '0.025'}
    assert table_rows(dom, 'em_bright.json') == {
        'HasNS': '1', 'HasRemnant': '0'}
    response = requests.get(image, timeout=10)
    assert response.status_code == 200
    assert response.headers['Content-Type'] == 'image/png'
    assert png_size(response.content) == (320, 240)


@pytest.mark.slow
def test_superevent_page_falls_back_on_the_preferred_event(gracedb,
                                                           gracedb_url,
                                                           allsky_png):
    event = upload_cbc(gracedb)
    graceid, gps = event['graceid'], event['gpstime']
    gracedb.write_log(graceid, 'plot', filename='bayestar.png',
                      filecontents=allsky_png)
    sid = gracedb.create_superevent(gps - 1, gps, gps + 1, graceid).json()[
        'superevent_id']
    # The superevent's own classification wins; its images come from G….
    gracedb.write_log(sid, 'p_astro', filename='p_astro.json',
                      filecontents=json.dumps(P_ASTRO).encode())
    root = gracedb_url[:-len('api/')]
    dom = dump_dom(f'{root}superevents/{sid}/view/')
    assert (f'<img src="{gracedb_url}events/{graceid}/files/bayestar.png,0"'
            in dom)
    assert f'From the preferred event <a href="{root}events/{graceid}' \
        '/view/">' in dom
    assert table_rows(dom, 'p_astro.json')['BNS'] == '0.975'
    assert dom.count('From the preferred event') == 1


@pytest.mark.slow
def test_malformed_classification_file_is_shown_as_unreadable(gracedb,
                                                              gracedb_url):
    graceid = upload_cbc(gracedb)['graceid']
    gracedb.write_log(graceid, 'broken', filename='em_bright.json',
                      filecontents=b'{"HasNS": ')
    gracedb.write_log(graceid, 'hostile', filename='p_astro.json',
                      filecontents=b'{"<b>BNS</b>": "<script>", "BBH": 1}')
    root = gracedb_url[:-len('api/')]
    page = requests.get(f'{root}events/{graceid}/view/', timeout=10).text
    assert 'unreadable: not a' in page
    assert '<script>' not in page and '&lt;b&gt;BNS' not in page
    assert '<tr><td>BBH</td><td>1</td></tr>' in page


@pytest.mark.slow
def test_superevent_page_draws_its_timeline(gracedb, gracedb_url):
    from gwcelery import timeline
    event = upload_cbc(gracedb)
    graceid, gps = event['graceid'], event['gpstime']
    sid = gracedb.create_superevent(gps - 1, gps, gps + 1, graceid).json()[
        'superevent_id']
    doc = timeline.document(sid, {
        'alert_received': {'time': 101.0, 'detail': ''},
        'preliminary-1/sent': {'time': 104.0, 'detail': '<b>ivo</b>'},
    }, {graceid: {'uploaded': {'time': 100.0, 'detail': ''}}})
    gracedb.write_log(sid, 'timeline', filename='timeline.json',
                      filecontents=json.dumps(doc).encode())
    root = gracedb_url[:-len('api/')]
    dom = dump_dom(f'{root}superevents/{sid}/view/')
    table = re.search(r'<table class="timeline">(.*?)</table>', dom, re.S)
    assert table, 'no timeline table'
    rows = re.findall(r'<tr><td>([^<]*)</td><td class="t">([^<]*)</td>'
                      r'<td class="n">'
                      r'([^<]*)</td><td class="n">([^<]*)</td><td class="bar">'
                      r'<span style="([^"]*)"></span></td><td>(.*?)</td></tr>',
                      table.group(1))
    assert [(r[0], r[2], r[3], r[4]) for r in rows] == [
        (f'{graceid}: event uploaded (GraceDb, to the second)', '0.000',
         '0.000', 'margin-left:0.00%;width:0.00%'),
        (f'{sid}: superevent alert received', '1.000', '1.000',
         'margin-left:0.00%;width:25.00%'),
        ('preliminary-1: sent', '4.000', '3.000',
         'margin-left:25.00%;width:75.00%')]
    assert rows[2][5] == '&lt;b&gt;ivo&lt;/b&gt;'  # details are text


@pytest.mark.slow
def test_broken_timeline_is_left_out(gracedb, gracedb_url):
    event = upload_cbc(gracedb)
    gps = event['gpstime']
    sid = gracedb.create_superevent(gps - 1, gps, gps + 1,
                                    event['graceid']).json()['superevent_id']
    gracedb.write_log(sid, 'timeline', filename='timeline.json',
                      filecontents=b'{"stages": [')
    root = gracedb_url[:-len('api/')]
    page = requests.get(f'{root}superevents/{sid}/view/', timeout=10)
    assert page.status_code == 200
    assert 'Latency timeline' not in page.text


@pytest.mark.parametrize('comment,html', [
    ('plain & <simple>', 'plain &amp; &lt;simple&gt;'),
    ('<p>Sky map <a href="/api/events/G1/files/x.fits,0">x</a></p>',
     '<p>Sky map <a href="/api/events/G1/files/x.fits,0">x</a></p>'),
    ('<table><tr><td>A</td><td>1</td></tr></table>',
     '<table><tr><td>A</td><td>1</td></tr></table>'),
    ('<script>alert(1)</script>', '&lt;script&gt;alert(1)&lt;/script&gt;'),
    ('<a href="javascript:alert(1)" onclick="x()">x</a>', '<a>x</a>'),
    ('<a href="java\tscript:alert(1)">x</a>', '<a>x</a>'),
    ('<b onmouseover="x()">bold', '<b>bold</b>'),
    ('<img src=x onerror=alert(1)>', '&lt;img src=x onerror=alert(1)&gt;'),
    ('</td>stray', '&lt;/td&gt;stray'),
    ('<!-- hidden -->', '&lt;!-- hidden --&gt;'),
    ('line<br/>break', 'line<br>break'),
    ('<a href="https://example.org/?a=1&amp;b=2">x</a>',
     '<a href="https://example.org/?a=1&amp;b=2">x</a>'),
])
def test_log_comments_are_restricted_html(comment, html):
    assert str(sanitize(comment)) == html

