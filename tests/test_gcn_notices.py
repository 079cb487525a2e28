"""What each GCN notice of an external trigger becomes (pure rules)."""
import datetime

import pytest
from gcn import NoticeType

from gwcelery.gcn_notices import Notice, NoticeError, Skip, read
from gwcelery.util.xml import parse
from gwcelery.vtp.parsing import get_notice_type

from .fixtures.exttrig import edit_notice


def decide(data):
    root = parse(data, 1 << 20)
    return read(root, get_notice_type(root))


@pytest.mark.parametrize('name, pipeline, search, trigger_id, notice_type', [
    ('fermi_grb_gcn.xml', 'Fermi', 'GRB', '548848711',
     NoticeType.FERMI_GBM_FIN_POS),
    ('fermi_subthresh_grb_gcn.xml', 'Fermi', 'SubGRB', '578679123',
     NoticeType.FERMI_GBM_SUBTHRESH),
    ('swift_grb_gcn.xml', 'Swift', 'GRB', '1123129',
     NoticeType.SWIFT_BAT_GRB_POS_ACK),
    ('snews_gcn.xml', 'SNEWS', 'Supernova', '1000194', NoticeType.SNEWS),
])
def test_samples(gcn_samples, name, pipeline, search, trigger_id,
                 notice_type):
    notice = decide(gcn_samples[name])
    assert isinstance(notice, Notice)
    assert (notice.pipeline, notice.search, notice.trigger_id,
            notice.notice_type, notice.group) == (
        pipeline, search, trigger_id, notice_type, 'External')
    assert notice.not_grb is None
    assert notice.time.tzinfo is not None


def test_time_is_utc():
    notice = decide(edit_notice('fermi_grb_gcn.xml',
                                isotime='2018-05-24T11:58:26.31+02:00'))
    assert notice.time == datetime.datetime(
        2018, 5, 24, 9, 58, 26, 310000, tzinfo=datetime.timezone.utc)


@pytest.mark.parametrize('ivorn, notice_type, pipeline', [
    ('ivo://nasa.gsfc.gcn/INTEGRAL#Wakeup_1', 53, 'INTEGRAL'),
    ('ivo://nasa.gsfc.gcn/INTEGRAL#Refined_1', 54, 'INTEGRAL'),
    ('ivo://nasa.gsfc.gcn/INTEGRAL#Offline_1', 55, 'INTEGRAL'),
    ('ivo://nasa.gsfc.gcn/AGILE#MCAL_Alert_1', 105, 'AGILE'),
    ('ivo://nasa.gsfc.gcn/Fermi#GBM_Alert_1', 110, 'Fermi'),
    ('ivo://nasa.gsfc.gcn/Fermi#GBM_Flt_Pos_1', 111, 'Fermi'),
    ('ivo://nasa.gsfc.gcn/Fermi#GBM_Gnd_Pos_1', 112, 'Fermi'),
])
def test_other_missions_and_types(ivorn, notice_type, pipeline):
    notice = decide(edit_notice('fermi_grb_gcn.xml', ivorn=ivorn,
                                params={'Packet_Type': notice_type}))
    assert (notice.pipeline, notice.search) == (pipeline, 'GRB')


@pytest.mark.parametrize('params, reason', [
    ({'Most_Likely_Index': 3, 'Most_Likely_Prob': 90},
     'most likely class 3, not a GRB (4)'),
    ({'Most_Likely_Index': 4, 'Most_Likely_Prob': 40},
     'probability of only 40 %'),
    ({'Def_NOT_a_GRB': 'true'}, 'Def_NOT_a_GRB is true'),
])
def test_fermi_not_grb(params, reason):
    notice = decide(edit_notice('fermi_grb_gcn.xml', params=params))
    assert reason in notice.not_grb


def test_fermi_grb_class():
    notice = decide(edit_notice('fermi_grb_gcn.xml', params={
        'Most_Likely_Index': 4, 'Most_Likely_Prob': 50}))
    assert notice.not_grb is None


def test_swift_lost_lock():
    notice = decide(edit_notice('swift_grb_gcn.xml',
                                params={'StarTrack_Lost_Lock': 'true'}))
    assert notice.not_grb == 'the star tracker lost lock'


@pytest.mark.parametrize('reliability, dropped', [
    (3, True), (4, True), (5, False), (8, False)])
def test_reliability(reliability, dropped):
    outcome = decide(edit_notice('fermi_subthresh_grb_gcn.xml',
                                 params={'Reliability': reliability}))
    assert isinstance(outcome, Skip) is dropped
    if dropped:
        assert outcome.reason == f'reliability {reliability} is at most 4'


@pytest.mark.parametrize('sample, role, expected', [
    ('snews_gcn.xml', 'test', 'Test'),
    ('snews_gcn.xml', 'utility', None),
    ('fermi_grb_gcn.xml', 'test', None),
    ('swift_grb_gcn.xml', 'utility', None),
    ('fermi_grb_gcn.xml', 'prediction', None),
])
def test_roles(sample, role, expected):
    outcome = decide(edit_notice(sample, role=role))
    if expected is None:
        assert isinstance(outcome, Skip)
        assert f"role '{role}'" in outcome.reason
    else:
        assert outcome.group == expected


@pytest.mark.parametrize('kwargs, message', [
    ({'params': {'TrigID': None}}, 'no TrigID or Trans_Num'),
    ({'params': {'TrigID': '1" OR group: CBC'}}, 'not a plain token'),
    ({'isotime': 'yesterday'}, "ISOTime is not a time: 'yesterday'"),
    ({'isotime': ''}, 'no ISOTime'),
    ({'position': ('north', 0, 1)}, 'C1 is not a number'),
    ({'params': {'Def_NOT_a_GRB': 'maybe'}}, 'neither true nor false'),
    ({'params': {'Most_Likely_Index': 'four'}}, 'Most_Likely_Index is not'),
    ({'ivorn': 'ivo://nasa.gsfc.gcn/Nowhere#1'}, 'no known mission'),
    ({'ivorn': 'ivo://nasa.gsfc.gcn/SWIFT#1'},
     'type 115 is from Fermi, but the IVORN names Swift'),
    ({'ivorn': ''}, 'no IVORN'),
])
def test_malformed(kwargs, message):
    with pytest.raises(NoticeError, match=message.replace('(', r'\(')):
        decide(edit_notice('fermi_grb_gcn.xml', **kwargs))


def test_not_an_external_trigger_type():
    root = parse(edit_notice('fermi_grb_gcn.xml'), 1 << 20)
    with pytest.raises(NoticeError, match='not an external trigger type'):
        read(root, NoticeType.LVC_INITIAL)
