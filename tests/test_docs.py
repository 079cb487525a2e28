"""The API reference covers the whole package.

The documentation build (``make docs``: nitpicky, warnings as errors)
fails on a reference that does not resolve, but not on what is missing:
autodoc renders only the modules that a page names, and skips a task that
has no docstring without a word. These tests check that every module of
the package has its ``automodule`` directive in ``doc/``, with
``:members:`` where it defines tasks, and that every task has a docstring.
"""
import re
from pathlib import Path

import gwcelery.tasks  # noqa: F401  (registers every task)
from gwcelery import app

from .test_imports import _modules

DOC = Path(__file__).resolve().parent.parent / 'doc'

_AUTOMODULE = re.compile(
    r'^\.\. automodule:: *(?P<name>\S+) *\n(?P<options>(?:[ \t]+:.*\n)*)',
    re.MULTILINE)


def automodule_directives():
    """``{module name: [options text of each directive naming it]}``."""
    directives = {}
    for page in sorted(DOC.rglob('*.rst')):
        for match in _AUTOMODULE.finditer(page.read_text()):
            directives.setdefault(match['name'], []).append(match['options'])
    return directives


def gwcelery_tasks():
    app.loader.import_default_modules()
    return {name: task for name, task in app.tasks.items()
            if name.startswith('gwcelery.')}


def test_directive_pattern():
    """The parser itself: names and options of a directive, and nothing
    from a literal block that only mentions one."""
    page = ('.. automodule:: gwcelery.a\n   :members:\n\n'
            '.. automodule:: gwcelery.b\n\n'
            'Text::\n\n    .. automodule:: gwcelery.c\n')
    found = {m['name']: m['options'] for m in _AUTOMODULE.finditer(page)}
    assert found == {'gwcelery.a': '   :members:\n', 'gwcelery.b': ''}


def test_every_module_is_documented():
    documented = set(automodule_directives())
    modules = set(_modules())
    assert not modules - documented, (
        'modules without an automodule directive in doc/ '
        '(add them to the fitting page of doc/api/): '
        + ', '.join(sorted(modules - documented)))
    assert not documented - modules, (
        'automodule directives for modules that do not exist: '
        + ', '.join(sorted(documented - modules)))


def test_every_module_is_documented_once():
    twice = sorted(name for name, options in automodule_directives().items()
                   if len(options) > 1)
    assert not twice, 'modules with more than one automodule directive: ' \
        + ', '.join(twice)


def test_every_task_is_documented():
    directives = automodule_directives()
    tasks = gwcelery_tasks()
    assert 'gwcelery.tasks.gcn.listen' in tasks
    for name, task in sorted(tasks.items()):
        assert task.__doc__, f'task {name} has no docstring'
        module = task.__wrapped__.__module__
        # A bare :members: (not a list of names) renders every task, new
        # ones included.
        assert any(re.search(r'^\s+:members: *$', options, re.MULTILINE)
                   for options in directives.get(module, [])), (
            f'the automodule directive of {module} does not render all its '
            f'members, so task {name} is missing from the API reference')
