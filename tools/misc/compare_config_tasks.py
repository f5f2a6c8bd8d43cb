"""The tasks every config builds with, before and after a config change (issue 23 item 5).

    # the old tree: git archive HEAD configs | tar -x -C /tmp/old
    python tools/misc/compare_config_tasks.py dump /tmp/old/configs old.json
    python tools/misc/compare_config_tasks.py dump configs new.json --apply
    python tools/misc/compare_config_tasks.py compare old.json new.json

``dump`` reads every config under the folder (``_base_`` fragments excluded) and writes, per
config (path relative to the folder), field path -> tasks: the top-level ``tasks``,
``model``, ``model.backbone`` (the segmentor's hand-off where it states none), every dataset
and every ``MultiTaskMetric`` (``mmase.engine.experiment_tasks.resolved_tasks``); ``--apply``
runs ``apply_experiment_tasks`` first. ``compare`` prints every difference (a config only in
the new tree is listed, not counted); exit status 1 if any.
"""
import argparse
import json
import sys
from pathlib import Path

from mmengine.config import Config


def dump(root: Path, out: Path, apply: bool) -> None:
    import mmase  # noqa: F401 (registers the classes the fields name)
    from mmase.engine.experiment_tasks import apply_experiment_tasks, resolved_tasks
    result = {}
    paths = sorted(p for p in root.rglob('*.py') if '_base_' not in p.parts)
    for i, path in enumerate(paths):
        cfg = Config.fromfile(str(path))
        if apply:
            apply_experiment_tasks(cfg)
        result[str(path.relative_to(root))] = {
            k: (list(v) if v is not None else None) for k, v in resolved_tasks(cfg).items()}
        print(f'{i + 1}/{len(paths)} {path}', file=sys.stderr, flush=True)
    out.write_text(json.dumps(result, indent=1, sort_keys=True))


def compare(old: Path, new: Path) -> int:
    a, b = json.loads(old.read_text()), json.loads(new.read_text())
    bad = 0
    for name in sorted(set(a) | set(b)):
        if name not in b:
            print(f'{name}: only in old (removed)')
            bad += 1
            continue
        if name not in a:
            print(f'{name}: only in new (added; not compared)')
            continue
        fa, fb = a[name], b[name]
        # the top-level tuple itself may be new (a config that had none now states one)
        for field in sorted((set(fa) | set(fb)) - {'tasks'}):
            if fa.get(field) != fb.get(field):
                print(f'{name}: {field}: {fa.get(field)} -> {fb.get(field)}')
                bad += 1
    print(f'{len(set(a) & set(b))} configs compared, {bad} differences')
    return int(bad > 0)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    sub = parser.add_subparsers(dest='cmd', required=True)
    d = sub.add_parser('dump')
    d.add_argument('root', type=Path)
    d.add_argument('out', type=Path)
    d.add_argument('--apply', action='store_true')
    c = sub.add_parser('compare')
    c.add_argument('old', type=Path)
    c.add_argument('new', type=Path)
    args = parser.parse_args()
    if args.cmd == 'dump':
        dump(args.root, args.out, args.apply)
    else:
        sys.exit(compare(args.old, args.new))


if __name__ == '__main__':
    main()
