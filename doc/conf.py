"""Sphinx configuration for the gwcelery documentation."""
project = 'gwcelery'
author = 'The gwcelery developers'
copyright = '2026, ' + author

extensions = [
    'sphinx.ext.autodoc',
    'sphinx.ext.napoleon',
    'sphinx.ext.viewcode',
]
autodoc_member_order = 'bysource'
napoleon_numpy_docstring = True
napoleon_google_docstring = False
# No intersphinx: the build must work offline.
html_theme = 'alabaster'
exclude_patterns = ['_build']
nitpicky = False
