"""Small helpers shared by gwcelery's subsystems, one job per module.

* :mod:`~gwcelery.util.xml`: reading XML from outside (network, uploads)
  under one safety policy.
* :mod:`~gwcelery.util.waiting`: polling with a deadline and free ports.
"""
