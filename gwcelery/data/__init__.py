"""Data files that ship with gwcelery."""
