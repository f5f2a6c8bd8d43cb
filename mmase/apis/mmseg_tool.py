"""Run an OpenMMLab tool script (mmseg's or mmase's) with mmase loaded first.

mmseg's tools (``tools/analysis_tools/*.py``, ``tools/misc/*.py``, shipped in mmseg's wheel
under ``mmseg/.mim/tools``) import ``mmseg`` before any config is read; on ``mmcv-lite`` that
import stops at the missing compiled ``mmcv._ext``, and mmase's modules are not registered yet.
This entry imports mmase (its ``mmcv.ops`` fallback and registries) and then runs the script as
``__main__``. SCRIPT is a file, or ``SCOPE::PATH``: PATH inside the installed package's
``.mim`` folder (``mmseg::tools/analysis_tools/get_flops.py``,
``mmase::tools/train.py``)::

    python -m mmase.apis.mmseg_tool mmseg::tools/misc/print_config.py CONFIG
    python -m mmase.apis.mmseg_tool mmase::tools/train.py CONFIG --work-dir DIR

A CONFIG argument may also be ``mmase::toy/<file>.py`` (tools/train.py and tools/test.py
resolve it with :func:`packaged_path`). For a script written for mmseg's single-task configs,
this process (only) gives each config read its top-level ``tasks``
(:func:`experiment_tasks_on_read`) and lets ``cfg.model.decode_head`` name the first task's
head (:func:`single_head_view`). Scripts whose meaning does not carry over to several
tasks have mmase versions under ``tools/analysis/`` (docs/inference.md lists them).
"""
import importlib.util
import os.path as osp
import runpy
import sys

import mmase  # noqa: F401  (mmcv.ops fallback, registries)


def packaged_path(spec: str, folder: str = '') -> str:
    """The file ``SCOPE::PATH`` names: ``<package of SCOPE>/.mim/<folder>/PATH``.

    Args:
        spec (str): ``'mmase::toy/x.py'``, ``'mmseg::tools/test.py'``; any string without
            ``'::'`` is returned unchanged (a plain path).
        folder (str): Folder under ``.mim`` (``'configs'`` for a config, ``''`` for a tool).

    Returns:
        str: The existing file. Raises FileNotFoundError naming the package folder otherwise.
    """
    if '::' not in spec:
        return spec
    scope, _, rel = spec.partition('::')
    module = importlib.util.find_spec(scope) if scope.isidentifier() else None
    if module is None or module.origin is None:
        raise FileNotFoundError(f'{spec}: no installed package {scope!r}')
    path = osp.join(osp.dirname(module.origin), '.mim', folder, rel)
    if not osp.isfile(path):
        raise FileNotFoundError(f'{spec}: no file {path} (the package folder '
                                f'{osp.join(osp.dirname(module.origin), ".mim")} holds what '
                                f'its wheel ships; an editable mmase install needs '
                                f'`pip install -e .` to link it)')
    return path


def single_head_view() -> None:
    """Let a multi-task model config answer ``cfg.model.decode_head``, in this process only.

    mmseg's scripts are written for one decode head: ``get_flops.py`` reads
    ``cfg.model.decode_head.type`` (to refuse MaskFormer heads). A model dict with
    ``decode_heads`` (task -> head) and no ``decode_head`` answers that attribute read with its
    first task's head. It is no key (``'decode_head' in cfg.model`` stays False), so the model
    builds from the same dict; every other read is mmengine's.
    """
    from mmengine.config import ConfigDict
    if getattr(ConfigDict.__getattr__, 'mmase_single_head_view', False):
        return
    original = ConfigDict.__getattr__

    def __getattr__(self, name):
        if name == 'decode_head' and 'decode_head' not in self:
            heads = self.get('decode_heads')
            if isinstance(heads, dict) and heads:
                return next(iter(heads.values()))
        return original(self, name)

    __getattr__.mmase_single_head_view = True
    ConfigDict.__getattr__ = __getattr__


def experiment_tasks_on_read() -> None:
    """Give every config this process reads its top-level ``tasks``, as ``MultiTaskRunner`` does.

    mmase's configs state their tasks once, at the top (:mod:`mmase.engine.experiment_tasks`);
    mmseg's scripts build the model, datasets and metric straight from the config they read
    (only its ``train.py`` builds through ``runner_type``). Here ``Config.fromfile`` applies
    :func:`mmase.engine.apply_experiment_tasks` to what it returns, in this process only. A
    task list given later with ``--cfg-options tasks=...`` does not reach fields filled here:
    state it in the config file for mmseg's scripts.
    """
    from mmengine.config import Config
    if getattr(Config.fromfile, 'mmase_experiment_tasks', False):
        return
    from mmase.engine.experiment_tasks import apply_experiment_tasks
    original = Config.fromfile

    def fromfile(*args, **kwargs):
        return apply_experiment_tasks(original(*args, **kwargs))

    fromfile.mmase_experiment_tasks = True
    Config.fromfile = staticmethod(fromfile)


def main(argv=None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        raise SystemExit('usage: python -m mmase.apis.mmseg_tool SCRIPT.py|SCOPE::PATH [ARGS]')
    try:
        script = packaged_path(argv[0])
    except FileNotFoundError as error:
        raise SystemExit(f'mmseg_tool: error: {error}') from None
    if not osp.isfile(script):
        raise SystemExit(f'mmseg_tool: error: script {script} not found')
    single_head_view()  # this process runs the script only
    with open(script, encoding='utf-8') as f:
        if 'apply_experiment_tasks' not in f.read():  # mmase's tools apply them after options
            experiment_tasks_on_read()
    sys.argv = [script] + argv[1:]
    sys.path.insert(0, osp.dirname(osp.abspath(script)))
    runpy.run_path(script, run_name='__main__')


if __name__ == '__main__':
    main()
