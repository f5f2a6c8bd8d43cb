"""Install mmase: ``pip install -e .`` (add ``[tests]`` for the test tools, ``[tensorboard]`` for
``tools/train.py --tensorboard``, ``[seism]`` for the SEISM-parity edge matcher), or build a
wheel with ``pip wheel --no-deps .``. On a machine without a GPU install the CPU build of torch
first (docs/get_started.md): a plain ``torch`` requirement pulls the CUDA build.

As mmseg does, the configs, tools and demo travel inside the package as ``mmase/.mim/`` (copies
in a wheel or sdist, symlinks to the repository in an editable install), with a
``model-index.yml``: that is where mmengine looks for ``_base_ = ['mmase::toy/...py']``.
"""
import os
import os.path as osp
import shutil
import sys

from setuptools import find_packages, setup

HERE = osp.dirname(osp.abspath(__file__))
#: What ``mmase/.mim`` holds (repository-relative names, as mmseg's ``add_mim_extension``).
MIM_ITEMS = ('configs', 'tools', 'demo', 'model-index.yml')


def read_requirements(name):
    """Requirement lines of ``requirements/<name>.txt`` (comments and blanks dropped)."""
    path = osp.join(HERE, 'requirements', name + '.txt')
    with open(path) as f:
        return [ln.strip() for ln in f if ln.strip() and not ln.startswith(('#', '-'))]


def add_mim_extension():
    """Lay out ``mmase/.mim`` from the repository (mmseg's ``setup.py`` does the same).

    Editable installs (``develop`` / ``editable_wheel``) link each item so the configs stay the
    repository's; wheel and sdist builds copy them. Any other command leaves ``.mim`` alone.
    """
    if 'develop' in sys.argv or 'editable_wheel' in sys.argv:
        mode = 'symlink'
    elif {'sdist', 'bdist_wheel', 'build', 'build_py', 'install'} & set(sys.argv):
        mode = 'copy'
    else:
        return
    mim_path = osp.join(HERE, 'mmase', '.mim')
    os.makedirs(mim_path, exist_ok=True)
    for name in MIM_ITEMS:
        src = osp.join(HERE, name)
        if not osp.exists(src):
            continue  # an sdist's .mim is already laid out: it holds no repository root items
        tar = osp.join(mim_path, name)
        if osp.islink(tar) or osp.isfile(tar):
            os.remove(tar)
        elif osp.isdir(tar):
            shutil.rmtree(tar)
        if mode == 'symlink':
            os.symlink(osp.relpath(src, mim_path), tar)
        elif osp.isdir(src):
            shutil.copytree(src, tar, ignore=shutil.ignore_patterns('__pycache__', '*.pyc'))
        else:
            shutil.copyfile(src, tar)


def mim_package_data():
    """Every file under ``mmase/.mim`` (paths relative to ``mmase/``) for ``package_data``."""
    root = osp.join(HERE, 'mmase')
    files = []
    for dirpath, dirnames, filenames in os.walk(osp.join(root, '.mim'), followlinks=True):
        dirnames[:] = [d for d in dirnames if d != '__pycache__']
        files += [osp.relpath(osp.join(dirpath, f), root) for f in filenames
                  if not f.endswith('.pyc')]
    return sorted(files)


version = {}
with open(osp.join(HERE, 'mmase', 'version.py')) as f:
    exec(f.read(), version)

if __name__ == '__main__':
    add_mim_extension()
    setup(
        name='mmase',
        version=version['__version__'],
        description='Multi-task dense prediction with LoRA mixture-of-experts (adaptive shared '
        'experts) for MMSegmentation 1.x',
        long_description=open(osp.join(HERE, 'README.md')).read()
        if osp.exists(osp.join(HERE, 'README.md')) else '',
        long_description_content_type='text/markdown',
        packages=find_packages(exclude=('configs', 'tools', 'tests', 'docs', 'demo')),
        package_data={'mmase': mim_package_data()},
        python_requires='>=3.8',
        install_requires=read_requirements('mminstall') + read_requirements('runtime'),
        extras_require={'tests': read_requirements('tests'),
                        'tensorboard': read_requirements('tensorboard'),
                        'seism': read_requirements('seism')},
        license='Apache License 2.0',
        zip_safe=False,
    )
