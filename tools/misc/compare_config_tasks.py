"""The tasks every config builds with, before and after a config change (issue 23 item 5).

    # the old tree: git archive HEAD configs | tar -x -C /tmp/old
    python tools/misc/compare_config_tasks.py dump /tmp/old/configs old.json
    python tools/misc/compare_config_tasks.py dump configs new.json --apply
    python tools/misc/compare_config_tasks.py compare old.json new.json
    python tools/misc/compare_config_tasks.py full /tmp/old/configs configs

``dump`` reads every config under the folder (``_base_`` fragments excluded) and writes, per
config (path relative to the folder), field path -> tasks: the top-level ``tasks``,
``model``, ``model.backbone`` (the segmentor's hand-off where it states none), every dataset
and every ``MultiTaskMetric`` (``mmase.engine.experiment_tasks.resolved_tasks``); ``--apply``
runs ``apply_experiment_tasks`` first. ``compare`` prints every difference (a config only in
the new tree is listed, not counted); exit status 1 if any. ``full`` compares each config's
whole resolved dict, both trees after ``apply_experiment_tasks``, less ``runner_type`` and a
``model.backbone.tasks`` the new tree leaves to the segmentor's hand-off.
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


def _plain(x):
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    return [_plain(v) for v in x] if isinstance(x, (list, tuple)) else x


def _diff(a, b, path: str = 'cfg') -> list:
    """Every key path where the plain values ``a`` and ``b`` differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b), key=str):
            if k not in a or k not in b:
                out.append(f'{path}.{k}: only in {"new" if k in b else "old"}')
            else:
                out += _diff(a[k], b[k], f'{path}.{k}')
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in _diff(x, y, f'{path}[{i}]')]
    return [] if a == b else [f'{path}: {a!r} -> {b!r}']


def full(old_root: Path, new_root: Path) -> int:
    import mmase  # noqa: F401
    from mmase.engine.experiment_tasks import apply_experiment_tasks
    bad = compared = 0
    for path in sorted(p for p in old_root.rglob('*.py') if '_base_' not in p.parts):
        rel = path.relative_to(old_root)
        if not (new_root / rel).is_file():
            print(f'{rel}: only in old (removed)')
            bad += 1
            continue
        old, new = (_plain(apply_experiment_tasks(Config.fromfile(str(p))).to_dict())
                    for p in (path, new_root / rel))
        for cfg in (old, new):
            cfg.pop('runner_type', None)
        diffs = [d for d in _diff(old, new) if d != 'cfg.model.backbone.tasks: only in old']
        compared += 1
        bad += bool(diffs)
        for d in diffs:
            print(f'{rel}: {d}')
    print(f'{compared} configs compared, {bad} differ')
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
    f = sub.add_parser('full')
    f.add_argument('old_root', type=Path)
    f.add_argument('new_root', type=Path)
    args = parser.parse_args()
    if args.cmd == 'dump':
        dump(args.root, args.out, args.apply)
    elif args.cmd == 'full':
        sys.exit(full(args.old_root, args.new_root))
    else:
        sys.exit(compare(args.old, args.new))


if __name__ == '__main__':
    main()
