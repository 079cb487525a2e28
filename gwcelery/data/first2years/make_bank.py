"""Regenerate the bank of simulated compact-binary candidates in this folder.

Each event is one simulated signal taken through the tools that ship with
ligo.skymap and lalsuite, then trimmed to look like a search pipeline's
upload:

1. ``bayestar-sample-model-psd`` evaluates model noise curves (each
   detector's range scaled by a factor drawn from the event's seed) into
   ``NAME.psd.xml.gz``;
2. ``lalapps_inspinj`` draws one injection (sky position, distance,
   orientation, masses) from the event's seed;
3. ``bayestar-realize-coincs --measurement-error gaussian-noise`` turns it
   into single-detector triggers with SNR time series;
4. the result loses its simulation tables, gets its SNR series decimated to
   2048 Hz and a false-alarm rate, and becomes ``NAME.coinc.xml``.

The output depends only on the seeds below and on the versions of
ligo.skymap, lalsuite, numpy and scipy (recorded in ``bank.json``): run this
twice and the files are byte-for-byte the same. Process start and end times,
host, user and process id, which the tools take from the machine, are set to
fixed values derived from the event time.

Usage::

    python -m gwcelery.data.first2years.make_bank [--output DIR] [NAME ...]
    python -m gwcelery.data.first2years.make_bank --search NAME

The first form writes the named events (default: all) and a ``bank.json``
listing them into DIR (default: this folder). The second tries seeds from
NAME's seed upwards and prints the first one whose candidate passes NAME's
checks (detectors, network SNR), for adding or changing an event.
"""
import argparse
import contextlib
import gzip
import importlib.metadata
import io
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent

#: Sample rate (Hz) of the SNR time series in the bank. The tools write
#: 8192 Hz; a quarter of that is what pipelines upload and cuts BAYESTAR's
#: run time about threefold.
SNR_SAMPLE_RATE = 2048

#: Low-frequency cutoff (Hz) of injections and templates; it is recorded in
#: each coinc's process_params as ``--f-low``.
F_LOW = 30.0

#: Model noise curves (O3-like), one per detector.
NOISE_CURVES = {
    'H1': 'aLIGOO3LowT1800545',
    'L1': 'aLIGOO3LowT1800545',
    'V1': 'AdVO3LowT1800545',
}

#: Each detector's range is scaled by a factor in this interval, drawn from
#: the event's seed, so that the PSDs differ from event to event as real
#: detectors' do.
RANGE_SCALE = (0.8, 1.2)

#: Populations drawn by lalapps_inspinj, by component masses (solar masses),
#: distance (Mpc, uniform in volume) and the injected waveform.
SOURCES = {
    'BNS': {'mass1': (1.2, 1.6), 'mass2': (1.2, 1.6),
            'distance': (20, 150), 'waveform': 'TaylorF2threePointFivePN'},
    'NSBH': {'mass1': (5, 10), 'mass2': (1.2, 2),
             'distance': (40, 300), 'waveform': 'IMRPhenomD'},
    'BBH': {'mass1': (10, 40), 'mass2': (10, 40),
            'distance': (150, 1200), 'waveform': 'IMRPhenomD'},
}

#: Template approximant that BAYESTAR should use for every event here. Its
#: default, 'o2-uberbank', picks SEOBNRv4_ROM above 4 solar masses, whose
#: data file current lalsuite no longer ships.
BAYESTAR_WAVEFORM = 'IMRPhenomD'

#: A false-alarm rate (Hz) above this one is not publishable (one per 60 days
#: with a trials factor of 5).
PUBLISHABLE_FAR = 1 / (60 * 86400) / 5


@dataclass(frozen=True)
class Spec:
    """How to make one bank event.

    Attributes
    ----------
    name : str
        File name stem.
    source : str
        A key of :data:`SOURCES`.
    detectors : tuple of str
        Detectors that must all have a trigger.
    far : float
        False-alarm rate (Hz) written into coinc_inspiral.
    gps : int
        The injection lies within 100 s after this GPS time.
    seed : int
        Seed of every random draw (noise scaling, injection, measurement
        noise).
    snr : tuple of float
        Accepted range of network SNR.
    """

    name: str
    source: str
    detectors: tuple
    far: float
    gps: int
    seed: int
    snr: tuple = (12.0, 25.0)


HL = ('H1', 'L1')
HLV = ('H1', 'L1', 'V1')

#: The bank. Seeds were found with ``--search``. FARs are assigned, roughly
#: falling as the network SNR rises: most publishable, the two quietest
#: above :data:`PUBLISHABLE_FAR` (but below the superevent manager's
#: threshold of one per hour).
BANK = (
    Spec('bns_hl_1', 'BNS', HL, 5e-10, 1187000000, 108),
    Spec('bns_hl_2', 'BNS', HL, 2e-11, 1187400000, 201),
    Spec('bns_hlv_1', 'BNS', HLV, 3e-12, 1187800000, 304),
    Spec('nsbh_hl_1', 'NSBH', HL, 4e-10, 1188200000, 404),
    Spec('nsbh_hlv_1', 'NSBH', HLV, 2e-9, 1188600000, 504),
    Spec('bbh_hl_1', 'BBH', HL, 1e-9, 1189000000, 602),
    Spec('bbh_hl_2', 'BBH', HL, 1e-12, 1189400000, 703),
    Spec('bbh_hlv_1', 'BBH', HLV, 1e-10, 1189800000, 802),
    Spec('bns_hl_3', 'BNS', HL, 1e-7, 1190200000, 931, snr=(10.0, 12.0)),
    Spec('bbh_hl_3', 'BBH', HL, 2e-6, 1190600000, 1018, snr=(10.0, 12.0)),
)


class Rejected(Exception):
    """The seed's candidate fails its spec's checks."""


def _versions():
    return {name: importlib.metadata.version(name)
            for name in ('ligo.skymap', 'lalsuite', 'numpy', 'scipy')}


def _inspinj():
    """Path of lalapps_inspinj: beside this Python first, then on PATH."""
    path = os.pathsep.join([os.path.dirname(sys.executable),
                            os.environ.get('PATH', '')])
    found = shutil.which('lalapps_inspinj', path=path)
    if found is None:
        raise RuntimeError('lalapps_inspinj not found (it ships with lalsuite)')
    return found


def _load(data):
    from igwn_ligolw.utils import load_fileobj
    from ligo.skymap.io.events.ligolw import ContentHandler
    return load_fileobj(io.BytesIO(data), contenthandler=ContentHandler)


def _dump(doc):
    from igwn_ligolw.utils import write_fileobj
    f = io.BytesIO()
    write_fileobj(doc, f)
    return f.getvalue()


def _fix_processes(doc, gps):
    """Replace what the tools took from the machine with fixed values."""
    from igwn_ligolw.lsctables import ProcessTable
    for process in ProcessTable.get_table(doc):
        process.node = 'localhost'
        process.username = 'gwcelery'
        process.unix_procid = 0
        # As if a pipeline had run from an hour before the event until
        # shortly after it.
        process.start_time = gps - 3600
        process.end_time = gps + 60


def _remove(element):
    element.parentNode.removeChild(element)
    element.unlink()


def _make_psd(spec, workdir):
    """Write NAME.psd.xml.gz into workdir and return its bytes."""
    import numpy as np
    from ligo.skymap.tool import bayestar_sample_model_psd

    # The legacy generator's stream is fixed across numpy versions.
    scales = np.random.RandomState(spec.seed).uniform(
        *RANGE_SCALE, size=len(spec.detectors))
    args = ['--loglevel', 'ERROR', '--df', '2', '-o', 'psd.xml']
    for ifo, scale in zip(spec.detectors, scales):
        args += [f'--{ifo}', NOISE_CURVES[ifo], f'--{ifo}-scale', f'{scale:.3f}']
    with contextlib.chdir(workdir):
        bayestar_sample_model_psd.main(args)
    doc = _load((workdir / 'psd.xml').read_bytes())
    _fix_processes(doc, spec.gps)
    # mtime=0 keeps the gzip header free of the time of the run.
    data = gzip.compress(_dump(doc), mtime=0)
    (workdir / f'{spec.name}.psd.xml.gz').write_bytes(data)
    return data


def _make_injection(spec, workdir):
    source = SOURCES[spec.source]
    (mass1_min, mass1_max), (mass2_min, mass2_max) = (
        source['mass1'], source['mass2'])
    distance_min, distance_max = source['distance']
    args = [
        _inspinj(), '--seed', str(spec.seed),
        '--f-lower', str(F_LOW), '--waveform', source['waveform'],
        '--gps-start-time', str(spec.gps),
        '--gps-end-time', str(spec.gps + 1000),
        '--t-distr', 'fixed', '--time-step', '1000', '--time-interval', '100',
        '--l-distr', 'random', '--i-distr', 'uniform',
        # inspinj takes distances in kpc.
        '--d-distr', 'volume', '--min-distance', str(distance_min * 1000),
        '--max-distance', str(distance_max * 1000),
        '--m-distr', 'componentMass',
        '--min-mass1', str(mass1_min), '--max-mass1', str(mass1_max),
        '--min-mass2', str(mass2_min), '--max-mass2', str(mass2_max),
        '--disable-spin', '--output', 'injection.xml',
    ]
    subprocess.run(args, cwd=workdir, check=True, stdout=subprocess.DEVNULL)


def _realize(spec, workdir):
    from ligo.skymap.tool import bayestar_realize_coincs
    args = [
        '--loglevel', 'ERROR', '--seed', str(spec.seed),
        '--detector', *spec.detectors,
        '--measurement-error', 'gaussian-noise',
        '--snr-threshold', '4', '--net-snr-threshold', str(spec.snr[0]),
        # The name under which the PSD ships beside the coinc: readers that
        # follow process_params look for it in the coinc's folder.
        '--reference-psd', f'{spec.name}.psd.xml.gz',
        '--f-low', str(F_LOW),
        '-o', f'{spec.name}.coinc.xml', 'injection.xml',
    ]
    with contextlib.chdir(workdir):
        bayestar_realize_coincs.main(args)
    return _load((workdir / f'{spec.name}.coinc.xml').read_bytes())


def _decimate(series, factor):
    """Every factor-th sample of a COMPLEX8TimeSeries, keeping its peak."""
    import lal
    import numpy as np
    data = series.data.data
    # The SNR series is band-limited well below the new Nyquist frequency
    # (the whitened template's power falls steeply above a few hundred Hz),
    # so plain subsampling loses next to nothing.
    start = int(np.argmax(np.abs(data))) % factor
    kept = data[start::factor]
    out = lal.CreateCOMPLEX8TimeSeries(
        series.name, series.epoch + start * series.deltaT, series.f0,
        series.deltaT * factor, series.sampleUnits, len(kept))
    out.data.data = kept
    return out


def _decimate_snr_series(doc):
    import lal
    import lal.series
    from igwn_ligolw.ligolw import LIGO_LW, Param
    for elem in list(doc.getElementsByTagName(LIGO_LW.tagName)):
        # The root LIGO_LW has no Name at all.
        if getattr(elem, 'Name', None) != 'COMPLEX8TimeSeries':
            continue
        series = lal.series.parse_COMPLEX8TimeSeries(elem)
        factor = round(1 / (series.deltaT * SNR_SAMPLE_RATE))
        if not math.isclose(factor * SNR_SAMPLE_RATE * series.deltaT, 1):
            raise RuntimeError(f'SNR series at {1 / series.deltaT} Hz cannot '
                               f'be decimated to {SNR_SAMPLE_RATE} Hz')
        new = lal.series.build_COMPLEX8TimeSeries(
            _decimate(series, factor), encoding='base64')
        new.appendChild(Param.from_pyvalue(
            'event_id', Param.get_param(elem, 'event_id').value))
        elem.parentNode.insertBefore(new, elem)
        _remove(elem)


def _as_pipeline_upload(doc, spec):
    """Strip the simulation from a realized coinc, in place.

    Returns the injection's sim_inspiral row.
    """
    from igwn_ligolw import lsctables
    from lalinspiral.thinca import InspiralCoincDef

    sim_table = lsctables.SimInspiralTable.get_table(doc)
    if len(sim_table) != 1:
        raise Rejected(f'{len(sim_table)} candidates (expected 1)')
    sim = sim_table[0]
    _remove(sim_table)
    _remove(lsctables.SearchSummaryTable.get_table(doc))

    # Keep only the sngl<->sngl coincidence and what it refers to.
    coinc_defs = lsctables.CoincDefTable.get_table(doc)
    keep_def = {row.coinc_def_id for row in coinc_defs
                if (row.search, row.search_coinc_type)
                == (InspiralCoincDef.search, InspiralCoincDef.search_coinc_type)}
    coinc_defs[:] = [row for row in coinc_defs if row.coinc_def_id in keep_def]
    coincs = lsctables.CoincTable.get_table(doc)
    coincs[:] = [row for row in coincs if row.coinc_def_id in keep_def]
    keep_coinc = {row.coinc_event_id for row in coincs}
    coinc_maps = lsctables.CoincMapTable.get_table(doc)
    coinc_maps[:] = [row for row in coinc_maps
                     if row.coinc_event_id in keep_coinc]

    # The injection's own process (inspinj) goes with it.
    processes = lsctables.ProcessTable.get_table(doc)
    processes[:] = [row for row in processes
                    if row.program == 'bayestar-realize-coincs']
    keep_process = {row.process_id for row in processes}
    params = lsctables.ProcessParamsTable.get_table(doc)
    params[:] = [row for row in params if row.process_id in keep_process]
    _fix_processes(doc, spec.gps)

    coinc_inspiral, = lsctables.CoincInspiralTable.get_table(doc)
    # gstlal fills both; the tool leaves them at 0.
    coinc_inspiral.combined_far = spec.far
    coinc_inspiral.false_alarm_rate = spec.far
    _decimate_snr_series(doc)
    return sim


def _check(doc, spec):
    """Raise Rejected unless the candidate is what spec asks for."""
    from igwn_ligolw import lsctables
    coinc_inspirals = lsctables.CoincInspiralTable.get_table(doc)
    if len(coinc_inspirals) != 1:
        raise Rejected('not found (below the detection thresholds)')
    ifos = sorted(row.ifo for row in lsctables.SnglInspiralTable.get_table(doc))
    if ifos != sorted(spec.detectors):
        raise Rejected(f'triggers in {",".join(ifos)}')
    snr = coinc_inspirals[0].snr
    if not spec.snr[0] <= snr <= spec.snr[1]:
        raise Rejected(f'network SNR {snr:.1f}')


def _entry(doc, spec, sim):
    """The manifest entry of a finished event."""
    from igwn_ligolw import lsctables
    coinc_inspiral, = lsctables.CoincInspiralTable.get_table(doc)
    sngls = sorted(lsctables.SnglInspiralTable.get_table(doc),
                   key=lambda row: row.ifo)
    return {
        'name': spec.name,
        'source': spec.source,
        'coinc': f'{spec.name}.coinc.xml',
        'psd': f'{spec.name}.psd.xml.gz',
        'instruments': [row.ifo for row in sngls],
        'gpstime': float(coinc_inspiral.end),
        'far': spec.far,
        'publishable': spec.far <= PUBLISHABLE_FAR,
        'network_snr': coinc_inspiral.snr,
        'snr': {row.ifo: row.snr for row in sngls},
        'mass1': sngls[0].mass1,
        'mass2': sngls[0].mass2,
        'mchirp': coinc_inspiral.mchirp,
        'f_low': F_LOW,
        'snr_sample_rate': SNR_SAMPLE_RATE,
        'waveform': BAYESTAR_WAVEFORM,
        'seed': spec.seed,
        'injection': {
            'waveform': sim.waveform,
            'ra': math.degrees(sim.longitude),
            'dec': math.degrees(sim.latitude),
            'distance': sim.distance,
            'inclination': math.degrees(sim.inclination),
            'geocent_time': float(sim.time_geocent),
            'mass1': sim.mass1,
            'mass2': sim.mass2,
        },
    }


def make_event(spec):
    """Make one bank event.

    Returns
    -------
    coinc : bytes
        ``NAME.coinc.xml``.
    psd : bytes
        ``NAME.psd.xml.gz``.
    entry : dict
        Its manifest entry.

    Raises
    ------
    Rejected
        If the candidate fails the spec's checks.
    """
    from igwn_ligolw.ligolw import Table

    # Row ids come from class-wide counters that would otherwise carry on
    # from the previous event made in this process.
    Table.reset_next_ids()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        psd = _make_psd(spec, workdir)
        _make_injection(spec, workdir)
        doc = _realize(spec, workdir)
        _check(doc, spec)
        sim = _as_pipeline_upload(doc, spec)
        return _dump(doc), psd, _entry(doc, spec, sim)


def search(spec, tries=100):
    """The first seed from spec's upwards whose candidate passes its checks."""
    for seed in range(spec.seed, spec.seed + tries):
        candidate = Spec(**{**spec.__dict__, 'seed': seed})
        try:
            make_event(candidate)
        except Rejected as e:
            print(f'{spec.name}: seed {seed}: {e}', file=sys.stderr)
        else:
            return seed
    raise Rejected(f'{spec.name}: no seed in {tries} tries')


def write_bank(output, specs):
    """Write the events of specs and their bank.json into output."""
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    entries = []
    for spec in specs:
        coinc, psd, entry = make_event(spec)
        (output / entry['coinc']).write_bytes(coinc)
        (output / entry['psd']).write_bytes(psd)
        entries.append(entry)
    manifest = {
        'description': 'Simulated compact-binary candidates (not real '
                       'detections); see README.rst.',
        'generator': 'python -m gwcelery.data.first2years.make_bank',
        'versions': _versions(),
        'noise_curves': NOISE_CURVES,
        'events': entries,
    }
    with open(output / 'bank.json', 'w') as f:
        json.dump(manifest, f, indent=2)
        f.write('\n')


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog='python -m gwcelery.data.first2years.make_bank',
        description='Regenerate the bank of simulated CBC candidates.')
    parser.add_argument('names', nargs='*', metavar='NAME',
                        help='events to make (default: all)')
    parser.add_argument('--output', default=HERE, type=Path,
                        help='folder to write into (default: %(default)s)')
    parser.add_argument('--search', metavar='NAME',
                        help="print the first seed from NAME's that passes")
    opts = parser.parse_args(argv)
    by_name = {spec.name: spec for spec in BANK}
    if opts.search:
        print(search(by_name[opts.search]))
        return
    unknown = set(opts.names) - set(by_name)
    if unknown:
        parser.error(f'unknown events: {", ".join(sorted(unknown))}')
    write_bank(opts.output, [by_name[name] for name in opts.names] or BANK)


if __name__ == '__main__':
    main()
