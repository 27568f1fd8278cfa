import numpy as np
import pytest

from fundus_plugins.classes import ClassSet
from fundus_plugins.datasets.sources import read_fgadr, read_idrid, read_idrid_grades

CLASSES = ClassSet(['OD', 'MA', 'HE', 'EX', 'SE'])


def test_idrid_reader(idrid_tree):
    root, _ = idrid_tree
    recs = {r.name: r for r in read_idrid(root, CLASSES)}
    assert sorted(recs) == [f'idrid_IDRiD_0{i}' for i in range(1, 6)]
    r1, r2 = recs['idrid_IDRiD_01'], recs['idrid_IDRiD_02']
    assert r1.image.name == 'IDRiD_01.jpg' and r1.dataset == 'idrid'
    assert set(r1.masks) == {'OD', 'MA', 'HE', 'EX', 'SE'}
    assert r1.masks['OD'].name == 'IDRiD_01_OD.tif'
    assert r2.masks['SE'] is None          # missing mask file: no lesion
    assert r2.masks['HE'] is not None
    assert (r1.grade, r1.grade_source) == (3, 'annotated')  # name matches the CSV
    assert (r2.grade, r2.grade_source) == (None, 'ungraded')
    assert recs['idrid_IDRiD_05'].image.parent.name == 'b. Testing Set'


def test_idrid_grades_trailing_space_and_bad_grade(idrid_tree):
    root, _ = idrid_tree
    assert read_idrid_grades(root) == {'IDRiD_001': 2, 'IDRiD_01': 3}
    csv = next((root / 'B. Disease Grading' / '2. Groundtruths').glob('*.csv'))
    csv.write_text('Image name,Retinopathy grade,Risk of macular edema \nIDRiD_01,7,0\n')
    with pytest.raises(ValueError, match=r'Training Labels.csv:2: grade 7 is outside 0-4'):
        read_idrid_grades(root)


def test_idrid_missing_root(tmp_path):
    with pytest.raises(FileNotFoundError, match='A. Segmentation'):
        read_idrid(tmp_path, CLASSES)


def test_fgadr_reader_grades_absent_masks_and_exclusion(fgadr_tree, tmp_path):
    root, truth = fgadr_tree
    cs = ClassSet(['MA', 'HE', 'EX', 'SE', 'IRMA', 'NV', 'OD'])
    recs = {r.name: r for r in read_fgadr(root, cs)}
    assert len(recs) == 6
    r0 = recs['fgadr_0001_A']
    assert r0.grade == 0 and r0.grade_source == 'annotated'
    assert all(p is None for p in r0.masks.values())   # grade 0: no mask files at all
    assert 'OD' not in r0.masks and 'OD' not in r0.annotated  # FGADR has no OD masks
    r4 = recs['fgadr_0005_E']
    assert r4.grade == 4 and r4.masks['MA'].parent.name == 'Microaneurysms_Masks'
    assert r4.masks['HE'].parent.name == 'Hemohedge_Masks'
    # Exclusion by list and by file, with or without the extension.
    kept = read_fgadr(root / 'Seg-set', cs, exclude=['0002_B.png', '0003_C'])
    assert {r.name for r in kept} == set(recs) - {'fgadr_0002_B', 'fgadr_0003_C'}
    lst = tmp_path / 'exclude.txt'
    lst.write_text('# annotator bias\n0006_F.png\n')
    assert len(read_fgadr(root, cs, exclude=lst)) == 5
    with pytest.raises(ValueError, match='9999_Z'):
        read_fgadr(root, cs, exclude=['9999_Z'])


def test_fgadr_bad_grade_names_file_and_line(fgadr_tree):
    root, _ = fgadr_tree
    csv = root / 'Seg-set' / 'DR_Seg_Grading_Label.csv'
    lines = csv.read_text().splitlines()
    lines[2] = lines[2].split(',')[0] + ',five'
    csv.write_text('\n'.join(lines))
    with pytest.raises(ValueError, match=r'DR_Seg_Grading_Label.csv:3: grade .five. is not an integer'):
        read_fgadr(root, CLASSES)


def test_fgadr_missing_grade_is_kept_as_ungraded(fgadr_tree):
    root, _ = fgadr_tree
    csv = root / 'Seg-set' / 'DR_Seg_Grading_Label.csv'
    csv.write_text('\n'.join(csv.read_text().splitlines()[1:]) + '\n')
    with pytest.warns(UserWarning, match='no grade for 1 image'):
        recs = {r.name: r for r in read_fgadr(root, CLASSES)}
    assert recs['fgadr_0001_A'].grade is None
    assert recs['fgadr_0001_A'].grade_source == 'ungraded'
    assert np.sum([r.grade is None for r in recs.values()]) == 1


def test_names_in_grade_files_and_exclusion_lists_must_be_plain(fgadr_tree, tmp_path):
    """A name from a grade CSV or an exclusion list never becomes a path: a separator,
    a leading dot or an absolute path is an error naming the file and line."""
    root, _ = fgadr_tree
    grades = root / 'Seg-set' / 'DR_Seg_Grading_Label.csv'
    good = grades.read_text()
    grades.write_text(good + '../../etc/x.png,2\n')
    with pytest.raises(ValueError, match=r"DR_Seg_Grading_Label.csv:7: image: name "
                                         r"'../../etc/x.png' is not a plain file stem"):
        read_fgadr(root, ClassSet())
    grades.write_text(good)
    listed = tmp_path / 'exclude.txt'
    listed.write_text('0001_A.png\n/abs/0002_B.png\n')
    with pytest.raises(ValueError, match=r"exclude.txt:2: name '/abs/0002_B.png'"):
        read_fgadr(root, ClassSet(), exclude=listed)
    with pytest.raises(ValueError, match=r"exclusion list item 1: name '..\\\\0001_A'"):
        read_fgadr(root, ClassSet(), exclude=['..\\0001_A'])


def test_a_symlink_out_of_the_input_root_is_read_and_named(fgadr_tree, tmp_path):
    root, _ = fgadr_tree
    images = root / 'Seg-set' / 'Original_Images'
    outside = tmp_path / 'elsewhere.png'
    (images / '0001_A.png').rename(outside)
    (images / '0001_A.png').symlink_to(outside)
    with pytest.warns(UserWarning, match=r'1 file\(s\) are symbolic links to outside the '
                                         r'input root.*elsewhere.png'):
        records = read_fgadr(root, ClassSet())
    assert len(records) == 6
