"""The local GraceDb on PostgreSQL instead of SQLite, through the real
client: the database-specific parts (JSON queries, label subqueries,
binary files, concurrent writers picking identifiers, durability)."""
import threading
from pathlib import Path

import pytest
from ligo.gracedb.rest import GraceDb

DATA = Path(__file__).parent / 'data'
COINC = (DATA / 'gracedb' / 'coinc.xml').read_bytes()
PSD = (DATA / 'gracedb' / 'psd.xml.gz').read_bytes()
SWIFT = (DATA / 'gcn' / 'swift_grb_gcn.xml').read_bytes()


@pytest.fixture
def server(start_gracedb, postgresql_url):
    import sqlalchemy
    engine = sqlalchemy.create_engine(postgresql_url)
    with engine.begin() as conn:  # a clean database for each test
        conn.exec_driver_sql('DROP SCHEMA public CASCADE; '
                             'CREATE SCHEMA public')
    engine.dispose()
    return start_gracedb(database=postgresql_url)


def client(server):
    return GraceDb(service_url=server.url, force_noauth=True)


def test_events_files_labels_and_queries(server):
    gracedb = client(server)
    cbc = gracedb.create_event('CBC', 'gstlal', 'coinc.xml',
                               filecontents=COINC, labels=['INJ']).json()
    grb = gracedb.create_event('External', 'Swift', 'swift.xml',
                               search='GRB', filecontents=SWIFT).json()
    gracedb.write_log(cbc['graceid'], 'psd', filename='psd.xml.gz',
                      filecontents=PSD, tag_name='psd')
    assert gracedb.files(cbc['graceid'], 'psd.xml.gz').read() == PSD

    def found(query):
        return [e['graceid'] for e in gracedb.events(query)]

    assert found('INJ') == [cbc['graceid']]
    assert found('~INJ') == [grb['graceid']]
    assert found('far < 1e-10 CBC') == [cbc['graceid']]
    assert found('grbevent.trigger_id = "1123129"') == [grb['graceid']]
    assert found('grbevent.trigger_id = "1"') == []


def test_concurrent_writers_get_distinct_ids(server):
    gps = 1186436412
    seed = client(server).create_event('CBC', 'gstlal', 'coinc.xml',
                                       filecontents=COINC).json()
    sid = client(server).create_superevent(
        gps - 1, gps, gps + 1, seed['graceid']).json()['superevent_id']
    errors, made = [], []

    def work():
        try:
            gracedb = client(server)
            event = gracedb.create_event('CBC', 'gstlal', 'coinc.xml',
                                         filecontents=COINC).json()
            made.append(gracedb.create_superevent(
                gps - 1, gps, gps + 1, event['graceid']).json()[
                    'superevent_id'])
            for n in range(3):
                gracedb.write_log(sid, f'log {n}')
        except Exception as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert sorted(made) == [f'S170810{c}' for c in 'bcdefghijk']
    logs = client(server).logs(sid).json()['log']
    assert sorted(e['N'] for e in logs) == list(range(1, 31))


def test_acknowledged_writes_survive_kill_9(server, start_gracedb):
    gracedb = client(server)
    graceid = gracedb.create_event('CBC', 'gstlal', 'coinc.xml',
                                   filecontents=COINC).json()['graceid']
    gracedb.write_label(graceid, 'DQV')
    server.kill()
    restarted = start_gracedb(database=server.database, port=server.port)
    assert client(restarted).event(graceid).json()['labels'] == ['DQV']


def test_database_password_stays_out_of_the_log(start_gracedb,
                                                 postgresql_url):
    # Trust authentication accepts any password, so this one connects.
    url = postgresql_url.replace('gwcelery@', 'gwcelery:s3cret-pw@')
    server = start_gracedb(database=url)
    client(server).create_event('CBC', 'gstlal', 'coinc.xml',
                                filecontents=COINC)
    assert 'gwcelery:***@' in server.log()
    assert 's3cret-pw' not in server.log()
