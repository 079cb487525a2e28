"""Every module of the package imports, and no two modules import each
other, directly or around a loop.

The import graph is read from the source with :mod:`ast`, counting every
``import`` statement wherever it stands: an import inside a function runs
later than one at the top, but a cycle through it still ties the modules
together and breaks as soon as someone moves the import up.
"""
import ast
import importlib
from pathlib import Path

import pytest

import gwcelery

PACKAGE = Path(gwcelery.__file__).resolve().parent


def _module_name(path):
    parts = path.relative_to(PACKAGE.parent).with_suffix('').parts
    if parts[-1] == '__init__':
        parts = parts[:-1]
    return '.'.join(parts)


def _modules():
    """``{module name: source path}`` of every module of the package."""
    return {_module_name(path): path
            for path in sorted(PACKAGE.rglob('*.py'))}


def _resolve(name, level, module, is_package):
    """Absolute name of a (possibly relative) import in module."""
    if not level:
        return name
    base = module.split('.')
    # A package's own __init__ is its name; a module's package is its parent.
    base = base[:len(base) - level + (1 if is_package else 0)]
    return '.'.join(base + ([name] if name else []))


def import_graph(modules):
    """``{module: set of modules of the package that it imports}``."""
    graph = {}
    for module, path in modules.items():
        is_package = path.name == '__init__.py'
        edges = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(node.module, node.level, module, is_package)
                # "from package import name": name may be a submodule.
                targets = [f'{base}.{alias.name}'
                           if f'{base}.{alias.name}' in modules else base
                           for alias in node.names]
            else:
                continue
            for target in targets:
                # "import a.b.c" imports a.b.c, which is what is used.
                while target and target not in modules:
                    target = target.rpartition('.')[0]
                if target and target != module:
                    edges.add(target)
        graph[module] = edges
    return graph


def find_cycles(graph):
    """The strongly connected components of more than one module (and
    modules importing themselves), by Tarjan's algorithm."""
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in graph.get(node, ()):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph.get(node, ()):
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


@pytest.mark.parametrize('module', sorted(_modules()))
def test_module_imports(module):
    importlib.import_module(module)


def test_no_import_cycle():
    cycles = find_cycles(import_graph(_modules()))
    assert not cycles, 'import cycles: ' + '; '.join(
        ' <-> '.join(cycle) for cycle in cycles)


def test_cycle_finder_sees_cycles(tmp_path):
    """The checker itself: a cycle through an import inside a function,
    a relative import of a package's name and a self-import are found;
    a chain is not a cycle."""
    sources = {
        'a': 'from . import b\n',
        'b': 'def later():\n    from .c import x\n',
        'c': 'import pkg.a\n',
        'chain1': 'from .chain2 import y\n',
        'chain2': 'import json\n',
        'sub.__init__': 'from .leaf import z\n',
        'sub.leaf': 'from .. import sub\n',
    }
    modules = {}
    for name, text in sources.items():
        path = tmp_path / 'pkg' / (name.replace('.', '/') + '.py')
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        modules['pkg.' + name.removesuffix('.__init__')] = path
    modules['pkg'] = tmp_path / 'pkg' / '__init__.py'
    modules['pkg'].write_text('')
    graph = import_graph(modules)
    assert graph['pkg.b'] == {'pkg.c'}
    assert graph['pkg.sub.leaf'] == {'pkg.sub'}
    assert find_cycles(graph) == [['pkg.a', 'pkg.b', 'pkg.c'],
                                  ['pkg.sub', 'pkg.sub.leaf']]
