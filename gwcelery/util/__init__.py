"""Small helpers shared by gwcelery's subsystems, one job per module.

* :mod:`~gwcelery.util.xml`: reading XML from outside (network, uploads)
  under one safety policy.
* :mod:`~gwcelery.util.waiting`: polling with a deadline and free ports.
* :mod:`~gwcelery.util.network`: whether a host is the loopback interface.
* :mod:`~gwcelery.util.numbers`: numbers read from outside, finite or
  refused; :mod:`~gwcelery.util.isotime`: ISO 8601 times.
* :mod:`~gwcelery.util.asyncio_thread`: an asyncio event loop in a thread,
  for synchronous callers.
"""
