"""``gwcelery debug``: one event or notice through the whole chain in one
process, as a user runs it; what it left is read back through a real local
GraceDb server on the same database."""
import re
import subprocess
import sys

import pytest

from gwcelery.data import first2years
from tests.conftest import ROOT
from tests.fixtures.gcn import DATA as GCN_DATA


def debug(*args, timeout=600):
    return subprocess.run(
        [sys.executable, '-m', 'gwcelery', 'debug', *map(str, args)],
        capture_output=True, text=True, cwd=ROOT, timeout=timeout)


def test_notice(tmp_path, start_gracedb):
    database = f'sqlite:///{tmp_path / "debug.sqlite"}'
    result = debug('--database', database, 'notice',
                   GCN_DATA / 'fermi_grb_gcn.xml')
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "GCN notice of type <NoticeType.FERMI_GBM_FIN_POS: 115>" in out
    # The test configuration's recording handler ran, in this process.
    assert re.search(r'\d+\.\d\ds tests\.fixtures\.gcn\.record_fermi\('
                     r'<\d+ bytes>\)\n +\d+\.\d\ds   -> None \(', out), out
    assert re.search(r'Done: \d+ task\(s\), \d+ message\(s\) \(LVAlert and '
                     r'GCN\), 0 failure\(s\)', out)
    if 'gwcelery.tasks.external_triggers.handle_gcn(' in out:
        from ligo.gracedb.rest import GraceDb
        server = start_gracedb(database=database)
        events = list(GraceDb(service_url=server.url, force_noauth=True)
                      .events('External'))
        assert [e['pipeline'] for e in events] == ['Fermi']


def test_not_a_notice(tmp_path):
    path = tmp_path / 'junk.xml'
    path.write_text('<not-a-voevent/>')
    result = debug('notice', path)
    assert result.returncode != 0
    assert 'junk.xml is not a usable GCN notice' in result.stderr


@pytest.mark.slow
def test_event(tmp_path, start_gracedb):
    """A bank event and its PSD: the event, its superevent, and (where the
    sky localization is registered) its sky map."""
    from ligo.gracedb.rest import GraceDb
    entry = first2years.events()[0]
    for name in (entry['coinc'], entry['psd']):
        (tmp_path / name).write_bytes(first2years.read(name))
    database = f'sqlite:///{tmp_path / "debug.sqlite"}'
    result = debug('--database', database, 'event', tmp_path / entry['coinc'],
                   '--psd', tmp_path / entry['psd'])
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "gwcelery.tasks.gracedb.create_event(<" in out
    assert "LVAlert cbc_gstlal: new G1" in out
    assert "gwcelery.tasks.superevents.handle(<alert new G1>)" in out
    superevent_id, = re.findall(r'LVAlert superevent: new (S\w+)', out)

    server = start_gracedb(database=database)
    client = GraceDb(service_url=server.url, force_noauth=True)
    superevent = client.superevent(superevent_id).json()
    assert superevent['preferred_event'] == 'G1'
    files = client.files('G1').json()
    assert {'coinc.xml', 'psd.xml.gz'} <= set(files)
    if 'localize' in out:
        assert 'bayestar.multiorder.fits' in files
    if 'gwcelery.tasks.voevent.send(' in out:
        # Sent through the in-process broadcaster and echoed back.
        assert 'GCN notice received back' in out
        assert client.voevents(superevent_id).json()['voevents']
