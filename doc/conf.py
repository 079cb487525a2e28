"""Sphinx configuration for the gwcelery documentation."""
project = 'gwcelery'
author = 'The gwcelery developers'
copyright = '2026, ' + author

extensions = [
    'sphinx.ext.autodoc',
    'sphinx.ext.napoleon',
    'sphinx.ext.intersphinx',
    'sphinx.ext.viewcode',
]
autodoc_member_order = 'bysource'
napoleon_numpy_docstring = True
napoleon_google_docstring = False
intersphinx_mapping = {
    'python': ('https://docs.python.org/3', None),
    'celery': ('https://docs.celeryq.dev/en/stable/', None),
}
# The build must work offline: intersphinx inventories are optional.
intersphinx_disabled_reftypes = ['*']
intersphinx_timeout = 1
suppress_warnings = ['intersphinx.external']
html_theme = 'alabaster'
exclude_patterns = ['_build']
nitpicky = False
