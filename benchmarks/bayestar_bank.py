#!/usr/bin/env python
"""BAYESTAR's cost on each event of the first2years bank.

Each bank event is localized once with bare ``ligo.skymap.bayestar.localize``
(the entry's waveform and f_low), in this process, one after the other.
Reported per event: wall and CPU time (CPU counts every OpenMP thread), the
1-minute load average before and after, the 90 % credible area and the
searched area and probability of the injection's true position.

Baseline: the HLV binary neutron star in tests/data/gracedb (SNR series at
the 8192 Hz the tools write), localized in the same run.

``--waveform-check`` also tries BAYESTAR's default waveform ('o2-uberbank')
on the events of 4 solar masses or more, and TaylorF2threePointFivePN on the
binary neutron stars, and reports whether each works.

Results are printed and written to ``--output`` (the shared record of
benchmarks/common.py); ``--quick`` localizes one HL event and no baseline.
"""
import argparse
import os
import sys
import time
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[0] = str(ROOT)  # not benchmarks/: its gcn.py would hide pygcn

from benchmarks.common import Run, parse_args  # noqa: E402
from gwcelery.data import first2years  # noqa: E402

BASELINE = ROOT / 'tests' / 'data' / 'gracedb'


def _event(coinc, psd):
    from ligo.skymap.io.events.ligolw import LigoLWEventSource
    event, = LigoLWEventSource(BytesIO(coinc), psd_file=BytesIO(psd)).values()
    return event


def _localize(event, waveform, f_low, truth=None):
    """Time one localization; None for the skymap values if it fails."""
    from astropy.coordinates import SkyCoord
    from ligo.skymap.bayestar import localize
    from ligo.skymap.postprocess.crossmatch import crossmatch

    load_before = os.getloadavg()[0]
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        skymap = localize(event, waveform=waveform, f_low=f_low)
    except Exception as e:  # report which waveform fails and why
        return {'waveform': waveform, 'error': f'{type(e).__name__}: {e}'}
    result = {
        'waveform': waveform,
        'wall': time.perf_counter() - wall,
        'cpu': time.process_time() - cpu,
        'load_before': load_before,
        'load_after': os.getloadavg()[0],
    }
    coord = None if truth is None else SkyCoord(
        truth['ra'], truth['dec'], unit='deg')
    match = crossmatch(skymap, coord, contours=(0.9,))
    result['area_90'] = match.contour_areas[0]
    if coord is not None:
        result['searched_area'] = match.searched_area
        result['searched_prob'] = match.searched_prob
    return result


def _row(name, detectors, result):
    if 'error' in result:
        return f'{name:<12} {detectors:<4} {result["waveform"]:<25} {result["error"]}'
    searched = (f'{result["searched_area"]:8.0f} {result["searched_prob"]:5.2f}'
                if 'searched_area' in result else f'{"-":>8} {"-":>5}')
    return (f'{name:<12} {detectors:<4} {result["waveform"]:<25} '
            f'{result["wall"]:6.1f} {result["cpu"]:6.1f} '
            f'{result["load_before"]:5.1f} {result["load_after"]:5.1f} '
            f'{result["area_90"]:8.0f} {searched}')


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('names', nargs='*', metavar='NAME',
                        help='bank events (default: all)')
    parser.add_argument('--waveform-check', action='store_true',
                        help='also try o2-uberbank and TaylorF2')
    parser.add_argument('--no-baseline', action='store_true')
    opts = parse_args(parser, 'bayestar_bank',
                      {'names': ['bbh_hl_1'], 'no_baseline': True})
    run = Run('bayestar_bank', opts)

    entries = [entry for entry in first2years.events()
               if not opts.names or entry['name'] in opts.names]
    print(f'{"event":<12} {"net":<4} {"waveform":<25} {"wall/s":>6} '
          f'{"cpu/s":>6} {"load<":>5} {"load>":>5} {"A90/deg2":>8} '
          f'{"searched":>8} {"p":>5}', flush=True)
    results = []
    runs = []
    if not opts.no_baseline:
        event = _event((BASELINE / 'coinc.xml').read_bytes(),
                       (BASELINE / 'psd.xml.gz').read_bytes())
        runs.append(('baseline', 'HLV', event, 'TaylorF2threePointFivePN',
                     30.0, None))
    for entry in entries:
        event = _event(first2years.read(entry['coinc']),
                       first2years.read(entry['psd']))
        detectors = ''.join(ifo[0] for ifo in entry['instruments'])
        waveforms = [entry['waveform']]
        if opts.waveform_check:
            if entry['mass1'] + entry['mass2'] >= 4:
                waveforms.append('o2-uberbank')
            else:
                waveforms.append('TaylorF2threePointFivePN')
        for waveform in waveforms:
            runs.append((entry['name'], detectors, event, waveform,
                         entry['f_low'], entry['injection']))
    for name, detectors, event, waveform, f_low, truth in runs:
        result = _localize(event, waveform, f_low, truth)
        print(_row(name, detectors, result), flush=True)
        results.append({'event': name, 'detectors': detectors, **result})

    run.write({f'{r["event"]} {r["waveform"]}': r for r in results})


if __name__ == '__main__':
    main()
