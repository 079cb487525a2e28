"""Default configuration.

Every setting is a module attribute with a docstring. The presets
(:mod:`gwcelery.conf.local`, :mod:`~gwcelery.conf.production`,
:mod:`~gwcelery.conf.playground`, :mod:`~gwcelery.conf.test`) start from
these values and change only what differs. To override a setting, write a
module that imports a preset and assigns new values, and point the
environment variable ``CELERY_CONFIG_MODULE`` at it::

    # mysite.py
    from gwcelery.conf.production import *  # noqa: F401,F403
    eternal_lock_ttl = 20.0

Celery's own environment variables (``CELERY_BROKER_URL``,
``CELERY_RESULT_BACKEND``) take precedence over the module, as Celery
users expect.
"""

# -- Celery settings ---------------------------------------------------------

broker_url = 'redis://127.0.0.1:6379/0'
"""Message broker. Redis is the only broker gwcelery is tested with; the
eternal-task locks and the embedded LVAlert transport also live there."""

result_backend = broker_url
"""Where task results and states live (the same Redis as the broker)."""

task_serializer = 'json'
"""Serializer for task messages. Kombu's JSON carries :class:`bytes`
(VOEvent XML, FITS sky maps) as tagged UTF-8 or base64 values, and unlike
pickle it cannot make a worker run code chosen by whoever can write to the
broker."""

result_serializer = 'json'
"""Serializer for task results; see :data:`task_serializer`."""

accept_content = ['json']
"""Content types a worker accepts. Anything else, pickle in particular, is
rejected with an error in the worker log and the message is discarded."""

result_accept_content = ['json']
"""Content types accepted when reading results; see :data:`accept_content`."""

task_default_queue = 'celery'
"""Queue for tasks that do not name one. The dedicated queues are
``openmp``, ``superevent``, ``exttrig`` and ``voevent``; a task names its
queue on its decorator (``@app.task(queue='openmp')``)."""

broker_connection_retry_on_startup = True
"""Keep retrying the broker at start-up instead of exiting, so a worker
started before Redis comes up waits for it."""

worker_cancel_long_running_tasks_on_connection_loss = False
"""Let running tasks (the eternal listeners among them) go on when the
broker connection drops; their locks expire by themselves if they die."""

broker_transport_options = {'visibility_timeout': 600,
                            'priority_steps': list(range(10))}
"""Redis transport options. A task that is acknowledged only when it
finishes (``acks_late``, as the superevent handler) and whose worker is
killed goes back to its queue after ``visibility_timeout`` seconds: ten
minutes here instead of Celery's hour. Keep it longer than any such task
runs and than any ``countdown``/``eta`` a task is sent with, or they run
twice.

Message priorities: kombu's Redis transport keeps one Redis list per
priority step for each queue and pops them in the order of
``priority_steps``, so priority 0 (also what a task sent without one gets)
is served first and 9 last. With every step from 0 to 9, each Celery
priority has its own list (kombu's default, ``[0, 3, 6, 9]``, would merge
1–2, 4–5 and 7–8 into 0, 3 and 6). ``queue_order_strategy`` stays
kombu's ``round_robin``: it orders the queues of a worker that consumes
several, while priorities order the messages within them. The volume
rendering (:func:`gwcelery.tasks.skymaps.plot_volume`) is sent with
priority 9, behind localizations on the ``openmp`` queue."""

redelivery_sole_consumer_queues = ('openmp', 'superevent', 'exttrig',
                                   'voevent')
"""Queues that one worker alone consumes in the deployment (the local one
and the HTCondor one alike). When a worker of one of them starts, the
unacknowledged messages of that queue delivered before it started are put
back at once instead of after ``visibility_timeout``
(:mod:`gwcelery.redelivery`): a localization whose worker was SIGKILLed
starts again within seconds. Leave out a queue that several workers
consume."""

worker_proc_alive_timeout = 30.0
"""Seconds a new pool process may take to start (importing ligo.skymap
and lalsuite is slow on a busy machine)."""

# -- gwcelery settings -------------------------------------------------------

eternal_lock_ttl = 10.0
"""Seconds an eternal task's lock lives without renewal. The running task
renews it every third of this time; when the process holding it dies, the
lock expires after at most this long and beat starts the task elsewhere
(sooner if a worker starts on the dead process's host, which frees the lock
at once: :func:`gwcelery.eternal.free_locks_of_dead_holders`)."""

eternal_resend_interval = 1.0
"""Seconds between beat's attempts to (re)start each eternal task."""

gracedb_url = 'https://gracedb.ligo.org/api/'
"""Root of the GraceDb REST API that gwcelery reads from and writes to."""

gracedb_timeout = 60.0
"""Seconds a GraceDb request may wait to connect or for each read before it
fails (and is retried); see :mod:`gwcelery.tasks.gracedb`."""

gracedb_max_retries = 10
"""Times a GraceDb task retries a request that failed for a transient
reason (connection error, timeout, HTTP 408, 409, 429 or 5xx)."""

gracedb_retry_backoff = 1.0
"""Seconds before the first retry of a GraceDb task (or of the superevent
manager after GraceDb failed); each further retry waits twice as long, up
to :data:`gracedb_retry_backoff_max`, with random jitter so that many
failed tasks do not all come back at once
(:func:`gwcelery.tasks.gracedb.retry_delay`)."""

gracedb_retry_backoff_max = 60.0
"""Longest wait in seconds between retries of a GraceDb task or of the
superevent manager."""

lvalert_url = 'xmpp://lvalert.cgca.uwm.edu'
"""LVAlert server. ``xmpp://HOST[:PORT]`` is an XMPP publish-subscribe
server (production); ``redis://…`` is the embedded transport on Redis."""

lvalert_username = None
"""XMPP user name for the LVAlert server; ``None`` takes the one of the
netrc entry (``machine HOST``) of the server's host. Unused by the Redis
transport."""

lvalert_password = None
"""XMPP password; ``None`` takes it from the netrc entry of the server's
host. It is never logged."""

lvalert_max_payload = 1024 * 1024
"""Largest LVAlert payload (bytes) the listener decodes; larger items are
logged and dropped. GraceDb's alerts are a few kilobytes."""

lvalert_stream_maxlen = 10000
"""Approximate number of items each node's stream keeps on the embedded
(Redis) transport. Items trimmed before the listener read them are lost."""

lvalert_node_max_items = 'max'
"""How many items the nodes that gwcelery's XMPP publisher creates
keep (``pubsub#max_items``): ``'max'`` for the most the server
allows, a number, or ``None`` for the server's default. After an outage a
listener recovers at most this many items per node; on prosody with file
storage, each publication costs more the more items a node keeps."""

flower_address = '127.0.0.1'
"""Address that ``gwcelery flower`` binds when not given ``--address``:
loopback, so the console is not exposed to the network by accident."""

flower_port = 5555
"""Port that ``gwcelery flower`` listens on when not given ``--port``."""

local_state_dir = None
"""Folder of the local deployment (supervisor configuration, logs, pid
files, Redis data). ``None`` means ``$XDG_STATE_HOME/gwcelery`` (by default
``~/.local/state/gwcelery``); the environment variable
``GWCELERY_STATE_DIR`` overrides both."""

local_worker_concurrency = 8
"""Pool processes of the general (``celery`` queue) worker of the local
deployment. Each eternal listener occupies one for good, so this must
exceed their number."""

# -- Superevent manager (gwcelery.tasks.superevents) --------------------------

superevent_far_threshold = 1 / 3600
"""Events with a false-alarm rate above this (Hz; one per hour) are left
out of superevents."""

superevent_d_t_start = {'gstlal': 1.0, 'pycbc': 1.0, 'spiir': 1.0,
                        'mbtaonline': 1.0}
"""Seconds before a CBC event's time at which its segment starts, by
pipeline (lower case)."""

superevent_d_t_end = {'gstlal': 1.0, 'pycbc': 1.0, 'spiir': 1.0,
                      'mbtaonline': 1.0}
"""Seconds after a CBC event's time at which its segment ends, by pipeline
(lower case)."""

superevent_default_d_t_start = 1.0
"""Segment start offset (s) for pipelines without a rule of their own, and
for burst events lacking the attributes their rule needs."""

superevent_default_d_t_end = 1.0
"""Segment end offset (s); see :data:`superevent_default_d_t_start`."""

superevent_cwb_duration_factor = 4.0
"""A cWB event's segment extends this many times its duration
(``MultiBurst.duration``) either side of its time. (oLIB segments extend
``quality_mean / frequency_mean`` either side.)"""

superevent_query_d_t_start = 100.0
"""Seconds before an event's time within which neighbouring superevents
are looked up."""

superevent_query_d_t_end = 100.0
"""Seconds after an event's time within which neighbouring superevents
are looked up."""

superevent_complete_labels = {
    'cbc': ('PASTRO_READY', 'EMBRIGHT_READY', 'SKYMAP_READY'),
    'burst': ('SKYMAP_READY',)}
"""Labels an event needs, by kind, to count as complete; complete events
are preferred over incomplete ones. A ``label_added`` alert for one of
these makes the superevent manager re-evaluate the event's superevent."""

superevent_preferred_event_order = ('complete', 'publishable', 'group',
                                    'instruments', 'significance')
"""Criteria that pick a superevent's preferred event, most important
first: ``complete`` (carries :data:`superevent_complete_labels`),
``publishable`` (see :data:`preliminary_alert_far_threshold`), ``group``
(CBC over Burst), ``instruments`` (more detectors, CBC only),
``significance`` (higher network SNR for CBC, lower FAR for Burst). Ties
go to the earlier upload (the lower GraceDb number)."""

superevent_cache_ttl = 60.0
"""Seconds that the superevent manager trusts what a neighbour query told
it, together with its own writes since, instead of asking GraceDb again
(:mod:`gwcelery.superevent_cache`). Changes that someone else makes to a
superevent's times, preferred event or members are seen at most this late;
0 asks GraceDb for every batch."""

superevent_reconcile_interval = 60.0
"""Seconds between runs of :func:`gwcelery.tasks.superevents.reconcile`,
which hands events that should be in a superevent but are not back to the
superevent manager, with a warning; 0 or ``None`` turns it off."""

superevent_reconcile_min_age = 60.0
"""Events created less than this many seconds ago are left to their own
alerts by the reconciliation."""

superevent_reconcile_lookback = 3600.0
"""Events created more than this many seconds ago are no longer looked at
by the reconciliation."""

preliminary_alert_far_threshold = {'cbc': 1 / (60 * 86400),
                                   'burst': 1 / (365 * 86400)}
"""FAR (Hz), after the trials factor, at or below which an event is
publishable: one per 60 days for CBC, one per year for Burst. Publishable
events are preferred over the rest."""

preliminary_alert_trials_factor = {'cbc': 5.0, 'burst': 4.0}
"""Factor the FAR is multiplied by before comparison with
:data:`preliminary_alert_far_threshold`: the number of searches of each
kind."""

# -- Sky localization (gwcelery.tasks.bayestar, gwcelery.tasks.orchestrator) --

bayestar_waveform = 'IMRPhenomD'
"""Template waveform with which BAYESTAR computes each detector's signal
model. ligo.skymap's default, ``'o2-uberbank'``, picks SEOBNRv4_ROM for
a total mass of 4 solar masses or more, and that approximant needs a data
file that current lalsuite no longer ships: those events would fail with a
RuntimeError. IMRPhenomD is computed by lalsuite alone for every mass and
spin of the mock-event bank (a test checks each), so it is the
default here. ``'TaylorF2threePointFivePN'`` also works, for neutron stars."""

bayestar_omp_num_threads = None
"""OpenMP threads of each localization; ``None`` leaves OpenMP's choice:
``OMP_NUM_THREADS`` if set, else every core. The openmp worker runs one
pool process (``-c 1``), so one localization at a time has the threads;
on a machine that also runs other busy workers, give it the cores they
leave free (see :doc:`/skymaps`)."""

skymap_lease = 600.0
"""Seconds for which an event's sky-map task claims its sky map (a Redis
key) before it may be claimed again: longer than any localization, and no
longer than the broker's ``visibility_timeout``, after which the task of a
killed worker comes back and must find the claim expired or its own (see
:mod:`gwcelery.tasks.orchestrator`)."""

# -- Notices (gwcelery.tasks.orchestrator, gwcelery.tasks.notices) ------------

orchestrator_timeout = 15.0
"""Seconds after a new superevent's LVAlert at which the orchestrator takes
its preferred event for the preliminary notice, so that the pipelines'
uploads of the first seconds have been grouped (see :doc:`/alerts`)."""

orchestrator_products_timeout = 120.0
"""Seconds the orchestrator waits, after it has taken a preferred event for
a notice, for that event's ``SKYMAP_READY``, ``EMBRIGHT_READY`` and
``PASTRO_READY`` labels (the completeness labels of
:data:`superevent_complete_labels`). A notice whose event is still
incomplete then goes out with what there is, and its log entry says so."""

superevent_clean_up_timeout = 270.0
"""Seconds after the first preliminary notice at which the orchestrator
looks at the superevent again and sends a second preliminary notice if the
preferred event has changed."""

orchestrator_notice_lease = 600.0
"""Seconds for which the task that prepares a notice claims it (a Redis
key, see :mod:`gwcelery.claims`) before another may: longer than a notice
takes to prepare and send, and no longer than the broker's
``visibility_timeout``, after which the task of a killed worker comes back
and must find the claim expired or its own."""

# -- Sky-map products and classification -------------------------------------

skymaps_allsky_dpi = 300
"""Resolution (dots per inch of an 8 × 6-inch figure) of the all-sky plot
(:func:`gwcelery.tasks.skymaps.plot_allsky`); 300, ligo-skymap-plot's
default, makes a 2400 × 1800 image in a few seconds."""

skymaps_volume_dpi = 100
"""Resolution (dots per inch of a 3.5-inch figure) of the volume rendering
(:func:`gwcelery.tasks.skymaps.plot_volume`). Its cost grows with the
square: ligo-skymap-plot-volume's own default of 300 did not finish in
10 minutes on two cores, 100 took about 2 minutes, 50 about 30 s."""

skymaps_flatten_nside = 512
"""HEALPix resolution of flattened sky maps
(:func:`gwcelery.tasks.skymaps.flatten`); ``None`` keeps the multi-order
map's finest resolution (order 11 for BAYESTAR: a file several times larger
and three times slower to make)."""

em_bright_ns_max_mass = 3.0
"""Heaviest object (M☉) that the source classification
(:mod:`gwcelery.tasks.em_bright`) counts as a neutron star."""

em_bright_eos = 'SLY'
"""Neutron-star equation of state (a name that lalsimulation's
``SimNeutronStarEOSByName`` knows) whose radius the remnant-mass fit of
:mod:`gwcelery.tasks.em_bright` uses."""

# -- GCN and VOEvents --------------------------------------------------------

gcn_remote_address = ('45.58.43.186:8099', '68.169.57.253:8099')
"""GCN VOEvent servers that :func:`gwcelery.tasks.gcn.listen` subscribes to,
as ``'HOST:PORT'`` strings; it tries them in turn when a connection fails
(these are GCN's public servers, the ones pygcn uses by default)."""

gcn_client_ivorn = 'ivo://gwcelery/listener'
"""IVORN that the GCN listener gives in its acks and iamalive answers."""

gcn_iamalive_timeout = 150.0
"""Seconds without any packet from the GCN server after which the listener
closes the connection and reconnects (servers send iamalive every 60 s)."""

gcn_max_reconnect_timeout = 1024
"""Longest wait in seconds between the listener's reconnection attempts;
pygcn starts at 2 s and doubles the wait after each failure."""

vtp_max_packet_size = 1 << 20
"""Largest VOEvent Transport Protocol packet accepted from the network
(bytes). GCN notices are a few kB; a longer announced length closes the
connection before anything is read."""

voevent_broadcaster_address = '127.0.0.1:5341'
"""``'HOST:PORT'`` where the voevent worker's VOEvent broadcaster listens
for subscribers (GCN connects to it to receive our notices)."""

voevent_broadcaster_whitelist = ('127.0.0.1',)
"""Addresses, networks (``'10.0.0.0/8'``) or host names allowed to
subscribe to the broadcaster; anyone else is disconnected at once."""

voevent_broadcaster_iamalive_interval = 60.0
"""Seconds between the broadcaster's iamalive messages; a subscriber that
has not answered one when the next is due is dropped."""

voevent_broadcaster_ack_timeout = 10.0
"""Seconds :func:`gwcelery.tasks.voevent.send` waits for subscribers' acks,
and that a subscriber may take to read what is sent to it before it is
dropped."""

gcn_feed_address = '127.0.0.1:8099'
"""``'HOST:PORT'`` where ``gwcelery gcn feed``, the local stand-in for GCN,
serves notices; the ``local`` preset's listener connects there."""

gcn_feed_upstream_address = None
"""``'HOST:PORT'`` of a VOEvent broadcaster that ``gwcelery gcn feed``
subscribes to, as GCN subscribes to ours, serving every notice it receives
to its own listeners; ``None``: none. The ``local`` preset subscribes to
:data:`voevent_broadcaster_address`, so that our notices come back through
the feed as GCN echoes them (see :doc:`/alerts`)."""

# -- External triggers and RAVEN (gwcelery.tasks.raven) -----------------------

raven_window_grb_cbc = (-5.0, 1.0)
"""Coincidence window in seconds of a gamma-ray burst and a CBC
superevent, which the GW time (the superevent's ``t_0``) minus the GRB's
trigger time must lie in. A merger comes before its burst: up to 5 s
before, 1 s after."""

raven_window_grb_burst = (-600.0, 60.0)
"""Coincidence window in seconds of a gamma-ray burst and a Burst
superevent, for the GW time minus the GRB time. Wider than for CBC, since
unmodelled GW bursts may come from sources whose gamma rays lag by
minutes."""

raven_window_snews = (-10.0, 10.0)
"""Coincidence window in seconds of a SNEWS supernova neutrino alert and
a Burst superevent, for the GW time minus the neutrino time. (A
core-collapse supernova is no compact binary: SNEWS alerts are not
compared with CBC superevents.)"""

# -- Health check (gwcelery nagios) -----------------------------------------

listener_status_ttl = 15.0
"""Seconds that a listener's status record in Redis lives without renewal
(:mod:`gwcelery.status`): the LVAlert and GCN listeners renew theirs while
they are subscribed or connected, so the health check sees a dead
listener at most this long after it died."""

voevent_broadcaster_expected_subscribers = ()
"""Subscribers that must be connected to the VOEvent broadcaster for
``gwcelery nagios`` to say OK: addresses, networks or host names, as in
:data:`voevent_broadcaster_whitelist`. Empty: no subscriber is required."""

nagios_timeout = 5.0
"""Seconds that ``gwcelery nagios`` waits for the workers' answers and for
GraceDb."""

# -- Mock-event stream (gwcelery.tasks.first2years) --------------------------

mock_events_enabled = False
"""Whether beat uploads mock events from the first2years bank
(:mod:`gwcelery.tasks.first2years`). On in the ``local`` preset only:
never point it at a GraceDb that others read."""

mock_events_period = 600.0
"""Seconds between mock events."""

mock_events_pipelines = ('gstlal', 'pycbc', 'MBTAOnline')
"""Pipelines that each upload a copy of every mock event (GraceDb pipeline
names). Every copy is localized, so each costs a BAYESTAR run."""

mock_events_seed = None
"""``None``: take the bank's events in turn and jitter the copies at
random. A number: a reproducible sequence of events and copies."""

mock_events_advocate_delay = 300.0
"""Seconds after a mock event's upload at which the mock advocate labels
its superevent ``ADVOK`` or ``ADVNO``."""

mock_events_advok_probability = 0.5
"""Probability that the mock advocate says ``ADVOK`` (else ``ADVNO``)."""

mock_events_grb_probability = 0.2
"""Probability that a mock event comes with a Fermi GBM notice of a burst
about a second after it, sent through the local GCN feed."""
