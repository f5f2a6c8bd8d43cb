"""Checks the tools run on a merged config before anything is built: no silently ignored keys,
no negative loss weights, writable output folders.

mmengine ignores top-level keys it does not know (``load_form=...`` trains from scratch) and
hands the keys of a hook dict to the hook's ``__init__``, where ``CheckpointHook`` keeps unknown
ones for its first save (``default_hooks.checkpoint.intervl`` fails after training).
"""
import ast
import difflib
import inspect
import os
import os.path as osp
import tempfile
import textwrap
from typing import Iterable, Optional, Set, Tuple

#: Top-level keys mmengine's ``Runner.from_cfg`` / mmengine's tools / mmseg's tools read,
#: beside the parameters of ``Runner.__init__`` (added in :func:`known_top_level_keys`).
EXTRA_TOP_LEVEL_KEYS = ('_base_', 'custom_imports', 'runner_type', 'model_wrapper_cfg',
                        'compile', 'tta_model', 'tta_pipeline', 'auto_scale_lr', '_scope_',
                        'tasks')


def known_top_level_keys() -> Set[str]:
    """Every top-level key the Runner (and the tools) read."""
    from mmengine.runner import Runner
    params = set(inspect.signature(Runner.__init__).parameters) - {'self', 'cfg'}
    return params | set(EXTRA_TOP_LEVEL_KEYS)


def _suggest(key: str, known: Iterable[str], cutoff: float = 0.6) -> str:
    close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=cutoff)
    return f" (did you mean '{close[0]}'?)" if close else ''


def check_top_level_keys(cfg, cfg_options: Optional[dict] = None,
                         file_keys: Optional[Iterable[str]] = None) -> None:
    """Refuse top-level keys nothing reads.

    - A key given on the command line (``--cfg-options``) that neither the Runner reads nor the
      config file defines does nothing: an error, with the closest known key.
    - A key of the config file itself may be a variable of the file (``train_pipeline``,
      ``crop_size``, ...); it is an error only when it is one edit (a letter added, dropped,
      changed, or two swapped) from a key the Runner reads (``load_form``, ``val_evalutor``).

    Args:
        cfg (Config): The merged config.
        cfg_options (dict, optional): ``--cfg-options`` (dotted keys).
        file_keys (Iterable[str], optional): Top-level keys of the config file before the
            command line was merged. Defaults to those of ``cfg``.

    Raises:
        ValueError: naming the key and the closest known one.
    """
    known = known_top_level_keys()
    file_keys = set(cfg.keys() if file_keys is None else file_keys)
    for option in cfg_options or {}:
        key = option.split('.')[0]
        if key not in known and key not in file_keys:
            raise ValueError(f'--cfg-options {option}: unknown top-level config key {key!r}'
                             f'{_suggest(key, known)}; nothing reads it')
    for key in sorted(file_keys - known):
        close = [k for k in sorted(known) if len(key) >= 4 and _edit_distance(key, k) <= 1]
        if close:
            raise ValueError(f"config key {key!r} is not read by anything (did you mean "
                             f"'{close[0]}'?)")


def _edit_distance(a: str, b: str) -> int:
    """Edits (insert, delete, substitute, swap two neighbours) turning ``a`` into ``b``."""
    previous2, previous = None, list(range(len(b) + 1))
    for i, char_a in enumerate(a, 1):
        current = [i] + [0] * len(b)
        for j, char_b in enumerate(b, 1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1,
                             previous[j - 1] + (char_a != char_b))
            if (i > 1 and j > 1 and char_a == b[j - 2] and a[i - 2] == char_b):
                current[j] = min(current[j], previous2[j - 2] + 1)
        previous2, previous = previous, current
    return previous[-1]


def _closed_kwargs_classes() -> tuple:
    """Classes whose ``**kwargs`` accept no key: ``CheckpointHook`` keeps them for
    ``Runner.save_checkpoint``, to which it already passes every parameter."""
    from mmengine.hooks import CheckpointHook
    return (CheckpointHook, )


def accepted_keys(cls) -> Tuple[Set[str], bool]:
    """The keyword arguments ``cls(...)`` accepts and whether that set is complete.

    Follows ``**kwargs`` up the class hierarchy (each ``__init__`` with ``**kwargs`` is taken
    to pass them to its parent's); incomplete when ``**kwargs`` reach a class that could use
    them otherwise.
    """
    keys: Set[str] = set()
    closed = _closed_kwargs_classes()
    for klass in cls.__mro__:
        init = klass.__dict__.get('__init__')
        if init is None:
            continue
        if klass is object:
            return keys, False
        try:
            params = inspect.signature(init).parameters.values()
        except (TypeError, ValueError):
            return keys, False
        keys |= {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
        keys.discard('self')
        if not any(p.kind == p.VAR_KEYWORD for p in params) or klass in closed:
            return keys, True
    return keys, False


def fixed_keys(cls) -> Set[str]:
    """Keyword arguments ``cls`` passes to a parent's ``__init__`` itself, beside the forwarded
    ``**kwargs`` (mmseg's ``UPerHead``: ``super().__init__(input_transform='multiple_select',
    **kwargs)``): a config giving one ends in ``TypeError: multiple values for keyword
    argument``. Read from the ``__init__`` sources along the ``**kwargs`` chain."""
    fixed: Set[str] = set()
    named: Set[str] = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get('__init__')
        if init is None:
            continue
        if klass is object:
            break
        try:
            params = list(inspect.signature(init).parameters.values())
            tree = ast.parse(textwrap.dedent(inspect.getsource(init)))
        except (TypeError, ValueError, OSError, SyntaxError):
            break
        named |= {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
        if not any(p.kind == p.VAR_KEYWORD for p in params):
            break
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == '__init__'
                    and any(k.arg is None for k in node.keywords)):
                fixed |= {k.arg for k in node.keywords if k.arg and k.arg not in named}
    return fixed


def _key_problems(cfg: dict, registry, extra: Tuple[str, ...]):
    """``(cls, unknown, clashing, accepted)`` for a ``type`` dict, or None when unchecked."""
    if not isinstance(cfg, dict) or 'type' not in cfg:
        return None
    cls = cfg['type'] if inspect.isclass(cfg['type']) else registry.get(cfg['type'])
    if cls is None:
        return None  # the build names an unknown type itself
    keys, complete = accepted_keys(cls)
    fixed = fixed_keys(cls)
    keys = (keys - fixed) | {'type', '_scope_', *extra}
    unknown = [k for k in cfg if k not in keys and k not in fixed] if complete else []
    return cls, unknown, [k for k in cfg if k in fixed], keys


def _check_dict_keys(cfg: dict, registry, where: str, extra: Tuple[str, ...]) -> None:
    problems = _key_problems(cfg, registry, extra)
    if problems is None:
        return
    cls, unknown, clashing, keys = problems
    for key in clashing:
        raise ValueError(f'{where}.{key}: {cls.__name__} sets {key!r} itself; remove it')
    for key in unknown:
        raise ValueError(f'{where}.{key}: unknown key {key!r} for {cls.__name__}'
                         f'{_suggest(key, keys)}; it accepts {sorted(keys)}')


def check_head_keys(cfg) -> None:
    """Refuse a decode head whose keys its type does not take, as after swapping a head's
    ``type`` over a base config's head without ``_delete_=True`` (the old head's keys stay).

    Checks ``model.decode_head``, ``model.auxiliary_head`` and ``model.decode_heads`` (a dict
    of task -> head, or a list).

    Raises:
        ValueError: naming the head, its type, every key it does not accept (and those it sets
            itself), and suggesting ``_delete_=True``.
    """
    from mmseg.registry import MODELS
    model = cfg.get('model') or {}
    heads = []
    for field in ('decode_head', 'auxiliary_head', 'decode_heads'):
        value = model.get(field)
        if isinstance(value, dict) and 'type' not in value:
            heads += [(f'model.{field}.{name}', head) for name, head in value.items()]
        elif isinstance(value, (list, tuple)):
            heads += [(f'model.{field}.{index}', head) for index, head in enumerate(value)]
        elif value is not None:
            heads.append((f'model.{field}', value))
    for where, head in heads:
        problems = _key_problems(head, MODELS, ())
        if problems is None or not (problems[1] or problems[2]):
            continue
        cls, unknown, clashing, keys = problems
        parts = []
        if unknown:
            parts.append(f'does not accept {sorted(unknown)}')
        if clashing:
            parts.append(f'sets {sorted(clashing)} itself')
        raise ValueError(
            f'{where}: {cls.__name__} {" and ".join(parts)}. If these keys come from the '
            f'base config\'s head (a head swapped by changing only `type`), replace the head '
            f'whole: write `_delete_=True` in {where} and give every key {cls.__name__} '
            f'needs; it accepts {sorted(keys - {"_scope_"})}')


def check_hook_and_evaluator_keys(cfg) -> None:
    """Refuse keys a hook (``default_hooks``, ``custom_hooks``) or a metric
    (``val_evaluator``, ``test_evaluator``) does not take, naming the closest one.

    Raises:
        ValueError: e.g. ``default_hooks.checkpoint.intervl: unknown key 'intervl' for
            SafeCheckpointHook (did you mean 'interval'?)``.
    """
    from mmseg.registry import HOOKS, METRICS
    for name, hook in (cfg.get('default_hooks') or {}).items():
        _check_dict_keys(hook, HOOKS, f'default_hooks.{name}', ('priority', ))
    for index, hook in enumerate(cfg.get('custom_hooks') or []):
        _check_dict_keys(hook, HOOKS, f'custom_hooks.{index}', ('priority', ))
    for field in ('val_evaluator', 'test_evaluator'):
        evaluator = cfg.get(field)
        if isinstance(evaluator, dict) and 'metrics' in evaluator:
            field, evaluator = f'{field}.metrics', evaluator['metrics']
        metrics = evaluator if isinstance(evaluator, (list, tuple)) else [evaluator]
        for index, metric in enumerate(metrics):
            where = f'{field}.{index}' if isinstance(evaluator, (list, tuple)) else field
            _check_dict_keys(metric, METRICS, where, ())


def check_loss_weights(cfg) -> None:
    """Refuse a negative or non-finite ``loss_weight`` in any ``loss_decode`` of ``cfg.model``
    (as ``model.loss_weights`` entries are refused): a negative weight maximises that loss.

    Raises:
        ValueError: naming the field, e.g. ``model.decode_heads.semseg.loss_decode.loss_weight``.
    """
    import math

    def walk(node, path):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == 'loss_decode':
                    losses = value if isinstance(value, (list, tuple)) else [value]
                    for index, loss in enumerate(losses):
                        where = f'{path}.loss_decode' + (
                            f'.{index}' if isinstance(value, (list, tuple)) else '')
                        weight = loss.get('loss_weight') if isinstance(loss, dict) else None
                        if isinstance(weight, (int, float)) and not (
                                math.isfinite(weight) and weight >= 0):
                            raise ValueError(f'{where}.loss_weight must be finite and >= 0, '
                                             f'got {weight}')
                walk(value, f'{path}.{key}')
        elif isinstance(node, (list, tuple)):
            for index, value in enumerate(node):
                walk(value, f'{path}.{index}')

    walk(cfg.get('model'), 'model')


def check_config(cfg, cfg_options: Optional[dict] = None,
                 file_keys: Optional[Iterable[str]] = None) -> None:
    """All the key checks above: top-level keys, hook, metric and head keys, loss weights."""
    check_top_level_keys(cfg, cfg_options, file_keys)
    check_hook_and_evaluator_keys(cfg)
    check_head_keys(cfg)
    check_loss_weights(cfg)


def check_writable_dir(path: str, what: str) -> None:
    """Refuse a local output folder that cannot be created or written, before the run starts.

    Creates nothing: the nearest existing folder of ``path`` gets a temporary file (removed at
    once), which also catches read-only file systems and ownership that ``os.access`` misses.

    Args:
        path (str): The folder (URLs / ``scheme://`` paths are skipped).
        what (str): How the message names it, e.g. ``'work_dir'``.

    Raises:
        PermissionError / OSError: naming ``what`` and the folder.
    """
    if not path or '://' in str(path):
        return
    path = osp.abspath(osp.expanduser(str(path)))
    existing = path
    while not osp.exists(existing):
        existing = osp.dirname(existing)
    if not osp.isdir(existing):
        raise NotADirectoryError(f'{what} {path}: {existing} is a file, not a folder')
    try:
        fd, probe = tempfile.mkstemp(prefix='.mmase_write_probe_', dir=existing)
        os.close(fd)
        os.remove(probe)
    except OSError as err:
        cause = err.strerror or type(err).__name__
        where = existing if existing == path else f'{existing} (where {path} would be created)'
        raise type(err)(err.errno, f'{what} {path} is not writable: cannot create a file in '
                                   f'{where}: {cause}') from None


def check_output_dirs(cfg, training: bool = True, extra: Iterable[Tuple[str, str]] = ()) -> None:
    """:func:`check_writable_dir` for ``work_dir``, the checkpoint and logger hooks' ``out_dir``
    (when training) and ``extra`` ``(path, what)`` pairs (e.g. ``--out``'s folder)."""
    checks = [(cfg.get('work_dir'), 'work_dir')]
    hooks = cfg.get('default_hooks') or {}
    if training:
        for name in ('checkpoint', 'logger'):
            hook = hooks.get(name)
            if isinstance(hook, dict) and hook.get('out_dir'):
                checks.append((hook['out_dir'], f'default_hooks.{name}.out_dir'))
    for path, what in list(checks) + list(extra):
        check_writable_dir(path, what)
