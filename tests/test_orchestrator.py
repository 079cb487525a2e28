"""The event-level sky-map pipeline, end to end.

One scenario for the whole module (:func:`scenario`), through real
processes: beat, a general worker, ``openmp`` workers, the session's local
GraceDb, LVAlert on the test Redis, uploads through the real ligo-gracedb
client. Bank events are localized at most once each:

1. A gstlal-style upload of the HL bank event :data:`GOOD` (coinc.xml
   without PSD, then psd.xml.gz). The openmp worker is SIGKILLed as soon as
   it starts localizing it, with its claim on the sky map taken and nothing
   uploaded.
2. While no openmp worker runs, the bad inputs of :data:`BAD` are uploaded.
3. A second openmp worker starts. The killed task comes back (acknowledged
   late; five-second visibility timeout) and makes the sky map; every bad
   input gets its reason in its GraceDb log. Meanwhile
   ``bayestar-localize-coincs`` makes the reference map of :data:`GOOD`.

The tests then read what the scenario left. Follow-up tasks (products,
classification) are held on a queue that no worker consumes
(:mod:`tests.fixtures.skymaps_conf`), where the tests count them.
"""
import io
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from gwcelery import app
from gwcelery.lvalert import transport
from gwcelery.tasks import bayestar, orchestrator
from gwcelery.util.waiting import wait_for

from .fixtures.skymaps import (bank_event, psd_for, single_detector,
                               with_embedded_psd, with_masses)
from .fixtures.skymaps_conf import FOLLOWUPS
from .fixtures.superevents import coinc_xml, cwb_trigger, fresh_time

pytestmark = pytest.mark.slow

#: The bank event localized for real (HL, SNR series at 2048 Hz).
GOOD = 'bns_hl_1'

#: Bad inputs: name → (what the GraceDb report must say).
BAD = {
    'empty': 'coinc.xml is empty',
    'malformed': 'coinc.xml is not acceptable XML',
    'refused': 'ligo.skymap cannot read coinc.xml',
    'missing_psd': 'psd.xml.gz has no PSD for L1',
    'single_detector': 'BAYESTAR needs two or more detectors',
    'not_cbc': 'Not a compact-binary event',
    'fails': 'BAYESTAR failed',
}

COLUMNS = ('UNIQ', 'PROBDENSITY', 'DISTMU', 'DISTSIGMA', 'DISTNORM')


def _upload_bad(stack):
    """Upload each bad input; return {name: graceid}."""
    _, coinc, psd = bank_event(GOOD)
    ids = {}
    # A valid event whose coinc.xml is then replaced by an empty file, or
    # by garbage, before its PSD arrives.
    for name, content in (('empty', b''), ('malformed', b'<LIGO_LW><Table')):
        graceid = ids[name] = stack.upload(coinc)
        stack.upload_file(graceid, 'coinc.xml', content)
        stack.upload_psd(graceid, psd)
    # A coinc that GraceDb reads (it has the coinc tables) and ligo.skymap
    # does not (no process table, no coinc_event_map).
    ids['refused'] = stack.upload(coinc_xml(fresh_time()))
    stack.upload_psd(ids['refused'], psd)
    ids['missing_psd'] = stack.upload(coinc)
    stack.upload_psd(ids['missing_psd'], psd_for(psd, {'H1'}))
    ids['single_detector'] = stack.upload(single_detector(coinc))
    stack.upload_psd(ids['single_detector'], psd)
    # A Test event on a CBC pipeline's node, from a burst trigger file.
    ids['not_cbc'] = stack.upload(cwb_trigger(fresh_time()),
                                  group='Test', filename='trigger.txt')
    # No waveform has a massless component; the coinc carries its PSDs, so
    # the 'new' alert alone starts the localization.
    ids['fails'] = stack.upload(
        with_embedded_psd(with_masses(coinc, 1.4, 0.0), psd))
    return ids


class Scenario:
    pass


@pytest.fixture(scope='module')
def scenario(skymap_stack, tmp_path_factory):
    stack = skymap_stack
    result = Scenario()
    result.stack = stack
    entry, coinc, psd = bank_event(GOOD)
    folder = tmp_path_factory.mktemp('reference')
    (folder / entry['coinc']).write_bytes(coinc)
    (folder / entry['psd']).write_bytes(psd)

    first = stack.openmp_workers[0]
    graceid = result.good = stack.upload(coinc)
    result.psd_entry = stack.upload_psd(graceid, psd)
    wait_for(lambda: f'Localizing {graceid}' in first.log(), timeout=60,
             what='the openmp worker to start localizing')
    stack.kill(first)
    result.bad = _upload_bad(stack)

    # The reference, while the second worker localizes: the same options
    # but the waveform (bayestar-localize-coincs reads the PSD file that
    # the coinc names, beside it).
    reference = subprocess.Popen(
        [Path(sys.executable).parent / 'bayestar-localize-coincs',
         entry['coinc'], '--waveform', app.conf.bayestar_waveform,
         '-o', 'out'], cwd=folder, stdout=subprocess.DEVNULL,
        stderr=open(folder / 'reference.log', 'w'))
    result.second = stack.start_openmp_worker()

    def done():
        return orchestrator.SKYMAP_LABEL in stack.labels(graceid) and all(
            any(BAD[name] in comment for comment in stack.reports(bad_id))
            for name, bad_id in result.bad.items())

    wait_for(done, timeout=150, interval=0.5,
             what='the sky map and every bad-input report')
    assert reference.wait(120) == 0, (folder / 'reference.log').read_text()
    result.reference = folder / 'out' / '0.fits'
    result.labelled_at = time.time()
    return result


def _table(data):
    from astropy.table import Table
    return Table.read(io.BytesIO(data), format='fits')


def test_sky_map_uploaded_once_with_label(scenario):
    stack = scenario.stack
    entries = stack.skymap_entries(scenario.good)
    assert len(entries) == 1
    assert entries[0]['tag_names'] == list(orchestrator.SKYMAP_TAGS)
    assert orchestrator.SKYMAP_LABEL in stack.labels(scenario.good)
    # The killed worker's task came back and made it.
    assert f'Localizing {scenario.good}' in scenario.second.log()


def test_sky_map_header_names_the_event(scenario):
    from astropy.io import fits
    data = scenario.stack.client.files(
        scenario.good, orchestrator.SKYMAP_FILENAME).read()
    header = fits.open(io.BytesIO(data))[1].header
    assert header['OBJECT'] == scenario.good
    assert header['REFERENC'] == bayestar.event_url(scenario.good)
    assert header['REFERENC'].startswith(
        app.conf.gracedb_url[:-len('api/')])
    assert header['INSTRUME'] == 'H1,L1'


def test_sky_map_equals_bayestar_localize_coincs(scenario):
    """Identical columns. Measured here: maps made with 1 and 2 OpenMP
    threads, in the worker and by the command, agree bit for bit."""
    ours = _table(scenario.stack.client.files(
        scenario.good, orchestrator.SKYMAP_FILENAME).read())
    theirs = _table(scenario.reference.read_bytes())
    assert len(ours) == len(theirs)
    for column in COLUMNS:
        np.testing.assert_array_equal(
            np.asarray(ours[column]), np.asarray(theirs[column]),
            err_msg=column)


def _product_names():
    return sorted(sig.task for sig in
                  orchestrator.skymap_products('x.fits', 'G0').tasks)


def test_held_followups_are_the_pipelines():
    assert FOLLOWUPS == set(_product_names()) | {
        task.name for task in orchestrator.CLASSIFIERS}


def test_products_started_once_with_the_uploaded_version(scenario):
    stack = scenario.stack
    version = stack.skymap_entries(scenario.good)[0]['file_version']
    sent = [(name, args) for name, args in stack.followups()
            if name in _product_names()]
    assert sorted(name for name, _ in sent) == _product_names()
    for _, args in sent:
        assert args == [None, f'{orchestrator.SKYMAP_FILENAME},{version}',
                        scenario.good, list(orchestrator.SKYMAP_TAGS)]


def _log_time(log, pattern):
    match = re.search(r'\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}):[^\]]*\] '
                      + pattern, log)
    assert match, pattern
    return match.group(1)


def test_classification_runs_beside_localization(scenario):
    stack = scenario.stack
    sent = [args for name, args in stack.followups()
            if name in {task.name for task in orchestrator.CLASSIFIERS}
            and args[0]['graceid'] == scenario.good]
    assert len(sent) == len(orchestrator.CLASSIFIERS)
    # Started on the 'new' alert, before the localization began.
    started = _log_time(stack.log('general'),
                        f'{scenario.good}: started classification')
    localizing = _log_time(stack.log('openmp'),
                           f'Localizing {scenario.good}')
    assert started < localizing


@pytest.mark.parametrize('name', sorted(BAD))
def test_bad_input_is_reported_on_the_event(scenario, name):
    stack = scenario.stack
    graceid = scenario.bad[name]
    reports = [c for c in stack.reports(graceid) if BAD[name] in c]
    assert reports, stack.reports(graceid)
    assert not stack.skymap_entries(graceid)
    assert orchestrator.SKYMAP_LABEL not in stack.labels(graceid)
    # In the worker log too.
    assert re.search(rf'ERROR.*{graceid}: .*{re.escape(BAD[name])}',
                     stack.log())


def test_only_openmp_workers_preload_ligo_skymap(scenario):
    line = 'ligo.skymap loaded for the openmp queue'
    assert line in scenario.second.log()
    assert line not in scenario.stack.log('general')


def test_bad_input_leaves_the_worker_serving(scenario):
    worker = scenario.second
    assert worker.proc.poll() is None
    # The good event was queued with the bad ones and still came out.
    assert scenario.stack.skymap_entries(scenario.good)


def test_redelivered_alert_uploads_nothing(scenario):
    stack = scenario.stack
    graceid = scenario.good
    followups = len(stack.followups())
    event = stack.client.event(graceid).json()
    with transport.from_url(app.conf.broker_url) as lvalert:
        for alert_type, data in (('log', scenario.psd_entry),
                                 ('new', event)):
            lvalert.publish('cbc_gstlal', {
                'uid': graceid, 'alert_type': alert_type, 'data': data,
                'object': event})
    wait_for(lambda: f'{graceid}: sky map {orchestrator.SKYMAP_FILENAME}'
             in stack.log('openmp') and f'{graceid}: classification already'
             in stack.log('general'), timeout=30,
             what='the repeated alerts to be handled')
    assert len(stack.skymap_entries(graceid)) == 1
    assert len(stack.followups()) == followups


def test_localize_task_raises_a_clear_error(scenario):
    """Through the openmp worker: the exception, its type and reason."""
    with pytest.raises(bayestar.MalformedInputError, match='is empty'):
        bayestar.localize.delay(b'', 'G0').get(timeout=60)
    _, coinc, psd = bank_event(GOOD)
    with pytest.raises(bayestar.SingleDetectorError, match='H1'):
        bayestar.localize.delay(coinc, 'G0', psd,
                                disabled_detectors=['L1']).get(timeout=60)
