#!/usr/bin/env python
"""Compare two runs of one benchmark: the ratio B/A of every numeric result.

    python benchmarks/compare.py A.json B.json

Prints when each run started and the machine's load average at its start
and end (on a shared machine, two runs at different times differ by the
load as well as by the code), the parameters that differ, then every
numeric result with its value in A and in B and the ratio B/A. Exits 2 if
a file is not a benchmark record or the two are of different benchmarks.
"""
import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The project root instead of this folder, whose scripts (gcn.py, …) would
# shadow packages of the same name.
sys.path[0] = str(ROOT)

from benchmarks.common import check_layout, numbers  # noqa: E402


def load(path):
    """The record in ``path``; ValueError if it is not one."""
    try:
        record = json.loads(Path(path).read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f'{path}: not JSON: {e}')
    try:
        check_layout(record)
    except ValueError as e:
        raise ValueError(f'{path}: not a benchmark record: {e}')
    return record


def ratios(a, b):
    """``(path, value in a, value in b, b / a)`` for every numeric result of
    either record, in the order of ``a`` then of what only ``b`` has; a
    value missing from one record, or a ratio with a zero divisor, is
    ``None``."""
    first, second = dict(numbers(a['results'])), dict(numbers(b['results']))
    rows = []
    for path in [*first, *(p for p in second if p not in first)]:
        x, y = first.get(path), second.get(path)
        rows.append((path, x, y, y / x if x and y is not None else None))
    return rows


def _number(value):
    return '—' if value is None else f'{value:.4g}'


def _describe(label, path, record):
    machine = record['machine']
    start, end = machine['load_average_start'], machine['load_average_end']
    return (f'{label}  {path}: started {record["started"]}, load average '
            f'{start[0]:.2f} at start, {end[0]:.2f} at end, '
            f'{machine["cpus"]} CPUs')


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('a', metavar='A.json', help='the baseline run')
    parser.add_argument('b', metavar='B.json', help='the run compared')
    args = parser.parse_args(argv)
    try:
        a, b = load(args.a), load(args.b)
    except (OSError, ValueError) as e:
        print(f'compare: {e}', file=sys.stderr)
        return 2
    if a['benchmark'] != b['benchmark']:
        print(f'compare: {args.a} is a run of {a["benchmark"]!r} and '
              f'{args.b} of {b["benchmark"]!r}', file=sys.stderr)
        return 2
    print(f'benchmark {a["benchmark"]}')
    print(_describe('A', args.a, a))
    print(_describe('B', args.b, b))
    changed = [f'{k} {a["parameters"].get(k)!r} → {b["parameters"].get(k)!r}'
               for k in sorted({*a['parameters'], *b['parameters']})
               if a['parameters'].get(k) != b['parameters'].get(k)]
    print('parameters that differ: ' + ('; '.join(changed) or 'none'))
    rows = ratios(a, b)
    width = max(len(row[0]) for row in rows)
    print(f'\n{"result":<{width}}  {"A":>10}  {"B":>10}  {"B/A":>6}')
    for path, x, y, ratio in rows:
        print(f'{path:<{width}}  {_number(x):>10}  {_number(y):>10}  '
              f'{"—" if ratio is None else f"{ratio:.2f}":>6}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
