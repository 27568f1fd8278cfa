import json

import numpy as np
import pytest

from fundus_plugins.classes import (BASE_CODES, DEFAULT_CLASSES, ClassSet, get_lesion_class,
                                    register_lesion_class, registered_classes)


def test_builtin_registry_holds_the_design_classes():
    for code in ('BG', 'RET', 'OD', 'MA', 'HE', 'EX', 'SE', 'IRMA', 'NV'):
        c = get_lesion_class(code)
        assert len(c.color) == 3
    assert get_lesion_class('HE').sources['fgadr'] == 'Hemohedge_Masks'
    assert get_lesion_class('OD').sources == {'idrid': '5. Optic Disc'}
    assert get_lesion_class('MA').sources['idrid'] == '1. Microaneurysms'


def test_class_set_orders_and_counts_channels():
    cs = ClassSet(['OD', 'EX'])
    assert cs.codes == ('BG', 'RET', 'OD', 'EX')
    assert len(cs) == 4
    assert len(ClassSet(DEFAULT_CLASSES)) == 7
    assert ClassSet(['BG', 'RET', 'OD']).codes == ('BG', 'RET', 'OD')
    assert cs.palette.shape == (4, 3) and cs.palette.dtype == np.uint8


@pytest.mark.parametrize('bad, err, needle', [
    (['OD', 'XYZ'], KeyError, "'XYZ'"),
    (['OD', 'OD'], ValueError, 'twice'),
    (['OD', 'BG'], ValueError, 'must come first'),
    ('OD', TypeError, 'list of codes'),
])
def test_bad_class_lists_name_the_problem(bad, err, needle):
    with pytest.raises(err, match=needle):
        ClassSet(bad)


def test_compose_uses_priority_and_fov():
    cs = ClassSet(['OD', 'HE', 'MA'])
    fov = np.zeros((4, 4), bool)
    fov[1:, :] = True
    od = np.zeros((4, 4), bool)
    od[1:3, 1:3] = True
    ma = np.zeros((4, 4), bool)
    ma[2, 2] = True
    ma[0, 0] = True  # outside the field of view: stays BG
    label = cs.compose(fov, {'OD': od, 'MA': ma, 'SE': np.ones((4, 4), bool)})
    assert label[0].tolist() == [0, 0, 0, 0]
    assert label[1, 1] == cs.index('OD')
    assert label[2, 2] == cs.index('MA')  # MA (priority 7) over OD (1)
    assert label[3, 3] == cs.index('RET')  # SE is not selected: ignored
    with pytest.raises(ValueError, match='shape'):
        cs.compose(fov, {'OD': np.zeros((3, 3), bool)})


def test_remap_drops_unselected_classes_to_retina():
    src = ClassSet(['OD', 'MA', 'HE', 'EX', 'SE'])
    dst = ClassSet(['EX', 'OD'])
    lut = dst.remap_from(src)
    assert lut[src.index('EX')] == dst.index('EX')
    assert lut[src.index('OD')] == dst.index('OD')
    assert lut[src.index('MA')] == dst.index('RET')
    assert lut[0] == 0 and lut[len(src)] == 255


def test_register_new_class_by_call_and_by_config_dict(tmp_path):
    register_lesion_class('VES1', 'vessel', (255, 255, 255), 8, {'fgadr': 'Vessel_Masks'})
    assert 'VES1' in registered_classes()
    with pytest.raises(ValueError, match='already registered'):
        register_lesion_class('VES1', 'vessel', (0, 0, 0), 8)
    cs = ClassSet(['OD', dict(code='VES2', name='vessel 2', color=(1, 2, 3), priority=9)])
    assert cs.codes[-1] == 'VES2' and len(cs) == 4
    cs.dump(tmp_path / 'classes.json')
    data = json.loads((tmp_path / 'classes.json').read_text())
    assert [c['code'] for c in data['classes']] == list(cs.codes)
    assert ClassSet.load(tmp_path / 'classes.json') == cs


def test_bad_color_and_bad_classes_json(tmp_path):
    with pytest.raises(ValueError, match='color'):
        register_lesion_class('BAD', 'bad', (300, 0, 0), 1)
    (tmp_path / 'classes.json').write_text('{"nope": 1}')
    with pytest.raises(ValueError, match='classes.json'):
        ClassSet.load(tmp_path / 'classes.json')
    with pytest.raises(FileNotFoundError, match='classes.json'):
        ClassSet.load(tmp_path / 'missing' / 'classes.json')
    assert BASE_CODES == ('BG', 'RET')
