"""Names that the local GraceDb accepts, listed in the service root.

The ligo-gracedb client checks groups, pipelines, searches, labels,
superevent categories and VOEvent types against these lists before it
sends a request, and the server checks them again.
"""
from .ids import CATEGORIES
from .voevent import VOEVENT_TYPES

__all__ = ('GROUPS', 'PIPELINES', 'SEARCHES', 'LABELS', 'INSTRUMENTS',
           'CATEGORIES', 'VOEVENT_TYPES')

GROUPS = ['CBC', 'Burst', 'External', 'Test', 'Detchar']

PIPELINES = ['gstlal', 'pycbc', 'MBTA', 'MBTAOnline', 'spiir', 'CWB',
             'oLIB', 'MLy', 'aframe', 'Fermi', 'Swift', 'INTEGRAL', 'AGILE',
             'SNEWS', 'CHIME', 'IceCube', 'SVOM', 'HardwareInjection']

SEARCHES = ['AllSky', 'LowMass', 'HighMass', 'BBH', 'IMBH', 'EarlyWarning',
            'SSM', 'LongDuration', 'GRB', 'SubGRB', 'SubGRBTargeted',
            'Supernova', 'FRB', 'HEN', 'MDC', 'O2VirgoTest']

LABELS = [
    'ADVNO', 'ADVOK', 'ADVREQ', 'COMBINEDSKYMAP_READY', 'DQOK', 'DQR',
    'DQV', 'EMBRIGHT_READY', 'EM_COINC', 'EM_READY', 'EM_SENT',
    'EM_Selected', 'EM_SelectedConfident', 'EM_Superseded', 'GCN_MISMATCH',
    'GCN_PRELIM_SENT',
    'H1NO', 'H1OK', 'HWINJNO', 'HWINJOK', 'HWINJREQ', 'INJ', 'L1NO', 'L1OK',
    'LOW_SIGNIF_LOCKED', 'LOW_SIGNIF_PRELIM_SENT', 'NOT_GRB', 'PASTRO_READY',
    'PE_READY', 'RAVEN_ALERT', 'SIGNIF_LOCKED', 'SKYMAP_READY',
    'SNR_OPTIMIZED', 'SPI_READY', 'V1NO', 'V1OK', 'K1NO', 'K1OK',
]

INSTRUMENTS = {'H1': 'LIGO Hanford Observatory',
               'L1': 'LIGO Livingston Observatory',
               'V1': 'Virgo', 'K1': 'KAGRA', 'G1': 'GEO600',
               'I1': 'LIGO India'}
