"""Small helpers shared by several parts of gwcelery."""
