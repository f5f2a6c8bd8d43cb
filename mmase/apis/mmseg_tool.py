"""Run one of mmseg's own tool scripts with mmase loaded first.

mmseg's tools (``tools/analysis_tools/*.py``, ``tools/misc/*.py`` of an mmsegmentation clone)
import ``mmseg`` before any config is read; on ``mmcv-lite`` that import stops at the missing
compiled ``mmcv._ext``, and mmase's modules are not registered yet. This entry imports mmase
(its ``mmcv.ops`` fallback and registries) and then runs the script as ``__main__``::

    python -m mmase.apis.mmseg_tool ../mmsegmentation/tools/misc/print_config.py CONFIG

Scripts whose meaning does not carry over to several tasks have mmase versions under
``tools/analysis/`` (docs/inference.md lists them).
"""
import os.path as osp
import runpy
import sys

import mmase  # noqa: F401  (mmcv.ops fallback, registries)


def main(argv=None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        raise SystemExit('usage: python -m mmase.apis.mmseg_tool SCRIPT.py [ARGS ...]')
    script = argv[0]
    if not osp.isfile(script):
        raise SystemExit(f'mmseg_tool: error: script {script} not found')
    sys.argv = [script] + argv[1:]
    sys.path.insert(0, osp.dirname(osp.abspath(script)))
    runpy.run_path(script, run_name='__main__')


if __name__ == '__main__':
    main()
