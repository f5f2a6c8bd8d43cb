"""Install mmase: ``pip install -e .`` (add ``[tests]`` for the test tools, ``[tensorboard]`` for
``tools/train.py --tensorboard``). On a machine without a GPU install the CPU build of torch
first (docs/get_started.md): a plain ``torch`` requirement pulls the CUDA build."""
import os.path as osp

from setuptools import find_packages, setup


def read_requirements(name):
    """Requirement lines of ``requirements/<name>.txt`` (comments and blanks dropped)."""
    path = osp.join(osp.dirname(osp.abspath(__file__)), 'requirements', name + '.txt')
    with open(path) as f:
        return [ln.strip() for ln in f if ln.strip() and not ln.startswith(('#', '-'))]


version = {}
with open(osp.join(osp.dirname(osp.abspath(__file__)), 'mmase', 'version.py')) as f:
    exec(f.read(), version)

setup(
    name='mmase',
    version=version['__version__'],
    description='Multi-task dense prediction with LoRA mixture-of-experts (adaptive shared '
    'experts) for MMSegmentation 1.x',
    long_description=open('README.md').read() if osp.exists('README.md') else '',
    long_description_content_type='text/markdown',
    packages=find_packages(exclude=('configs', 'tools', 'tests', 'docs')),
    python_requires='>=3.8',
    install_requires=read_requirements('mminstall') + read_requirements('runtime'),
    extras_require={'tests': read_requirements('tests'),
                    'tensorboard': read_requirements('tensorboard')},
    license='Apache License 2.0',
)
