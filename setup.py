"""fundus_plugins: synthetic diabetic-retinopathy fundus images with lesion labels, on OpenMMLab."""
from pathlib import Path

from setuptools import find_packages, setup


def read_requirements(name):
    path = Path(__file__).parent / 'requirements' / name
    return [line.strip() for line in path.read_text().splitlines()
            if line.strip() and not line.startswith('#')]


setup(
    name='fundus_plugins',
    version='0.1.0',
    description='Grade-conditioned label-map ACGAN + SPADE translator for DR fundus images, '
                'and segmentation experiments with synthetic data, as OpenMMLab plugins.',
    long_description=(Path(__file__).parent / 'README.md').read_text(encoding='utf-8')
    if (Path(__file__).parent / 'README.md').exists() else '',
    long_description_content_type='text/markdown',
    packages=find_packages(exclude=('tests', 'tests.*', 'configs', 'tools')),
    python_requires='>=3.10',
    # The OpenMMLab stack is installed by tools/setup_env.sh (mmcv must be built from source);
    # these are the pure-Python needs of the package itself.
    install_requires=['numpy', 'opencv-python', 'pillow', 'tqdm', 'mmengine'],
    extras_require={'tests': read_requirements('tests.txt')},
    license='Apache-2.0',
)
