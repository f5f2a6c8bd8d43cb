"""``TaskSpec``: the declaration of one dense task (what its maps are, how they are scored)."""
import math
from dataclasses import asdict, dataclass, field as dc_field
from typing import Optional, Tuple

#: Ways a head output ``(C, H, W)`` becomes the task's prediction (the segmentor applies them):
#: ``argmax`` class ids ``(1, H, W)`` (a 1-channel head: ``sigmoid > head.threshold``),
#: ``sigmoid`` foreground probability (a 2-channel head: softmax of channel 1), ``normalize``
#: L2-normalised vectors, ``identity`` the raw output (e.g. metres).
ACTIVATIONS = ('argmax', 'sigmoid', 'normalize', 'identity')

#: Decoders of a declared ``annotation`` (see :class:`TaskSpec`), applied to the file's bytes.
ANNOTATION_DECODERS = ('png_label', 'png_binary', 'png_float', 'npy')


@dataclass(frozen=True, eq=False)
class TaskSpec:
    """Static description of one dense task, built from its declaration (a config dict).

    The first five arguments keep the old positional order ``TaskSpec(name, field, kind,
    ignore_value, lower_is_better)``.

    Args:
        name (str): Task key used in configs (``semseg``).
        field (str): Suffix of the data-sample fields ``gt_<field>`` / ``pred_<field>``.
            Default: ``name``.
        kind (str): What the map is (``segmentation``, ``binary``, ``normals``, ``depth``,
            ``regression`` or any name a declaration gives); the kind classes of
            :mod:`mmase.tasks.kinds` fix it.
        ignore_value (float): Value marking pixels without a label (padding uses it too).
        lower_is_better (bool): Direction of the main metric (Δm's sign).
        main_metric (str): The metric of Δm and of the summary table (``<task>/<main_metric>``).
        channels (int): Channels of the ground-truth map (3 for normals, else 1).
        is_float (bool): Float ground truth (regression) or integer labels.
        activation (str): One of :data:`ACTIVATIONS`.
        flip_sign (tuple[int, int] | None): ``(x, y)`` channels whose sign a horizontal /
            vertical flip changes (normals: ``(0, 1)``); None: a flip only mirrors the map.
        meter (dict): Config of the task's meter in ``mmase.evaluation.TASK_METERS``
            (e.g. ``dict(type='SaliencyMeter')``); the metric adds the protocol and ignore value.
        num_classes (int, optional): Classes of a segmentation map (else the dataset's
            ``task_classes`` give them).
        annotation (dict, optional): Where a dataset finds the labels of a task it does not
            know itself: ``dict(dir=<folder under data_root>, suffix='.png', decoder=<one of
            ANNOTATION_DECODERS>, scale=1.0, offset=0.0)`` (``png_float``: ``(v + offset) *
            scale`` float32; ``png_binary``: ``v > 127``; ``png_label``: ``v`` as is; ``npy``:
            the array).
    """
    name: str
    field: Optional[str] = None
    kind: str = 'dense'
    ignore_value: float = 255
    lower_is_better: bool = False
    main_metric: str = ''
    channels: int = 1
    is_float: bool = False
    activation: str = 'identity'
    flip_sign: Optional[Tuple[int, int]] = None
    meter: dict = dc_field(default_factory=dict)
    num_classes: Optional[int] = None
    annotation: Optional[dict] = None

    def __post_init__(self):
        where = f'task {self.name!r}'
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise ValueError(f'task name must be an identifier (str), got {self.name!r}')
        if self.field is None:
            object.__setattr__(self, 'field', self.name)
        if not isinstance(self.field, str) or not self.field.isidentifier():
            raise ValueError(f'{where}: field must be an identifier, got {self.field!r}')
        if not isinstance(self.kind, str) or not self.kind:
            raise ValueError(f'{where}: kind must be a non-empty str, got {self.kind!r}')
        if isinstance(self.ignore_value, bool) or not isinstance(self.ignore_value, (int, float)) \
                or not math.isfinite(self.ignore_value):
            raise ValueError(f'{where}: ignore_value must be a finite number, got '
                             f'{self.ignore_value!r}')
        if not isinstance(self.lower_is_better, bool):
            raise ValueError(f'{where}: lower_is_better must be True or False, got '
                             f'{self.lower_is_better!r}')
        if not isinstance(self.main_metric, str) or not self.main_metric:
            raise ValueError(f'{where}: main_metric must name a metric of its meter, got '
                             f'{self.main_metric!r}')
        if isinstance(self.channels, bool) or not isinstance(self.channels, int) \
                or self.channels < 1:
            raise ValueError(f'{where}: channels must be an int >= 1, got {self.channels!r}')
        if not isinstance(self.is_float, bool):
            raise ValueError(f'{where}: is_float must be True or False, got {self.is_float!r}')
        if self.activation not in ACTIVATIONS:
            raise ValueError(f'{where}: activation={self.activation!r} is not one of '
                             f'{ACTIVATIONS}')
        if self.flip_sign is not None:
            sign = tuple(self.flip_sign)
            if len(sign) != 2 or any(not isinstance(c, int) or not 0 <= c < self.channels
                                     for c in sign):
                raise ValueError(f'{where}: flip_sign must be (x channel, y channel) below '
                                 f'channels={self.channels}, got {self.flip_sign!r}')
            object.__setattr__(self, 'flip_sign', sign)
        if not isinstance(self.meter, dict) or not isinstance(self.meter.get('type'), str):
            raise ValueError(f'{where}: meter must be a dict with a type (a registered meter, '
                             f'e.g. dict(type="PixelErrorMeter")), got {self.meter!r}')
        object.__setattr__(self, 'meter', dict(self.meter))
        if self.num_classes is not None and (isinstance(self.num_classes, bool) or not
                                             isinstance(self.num_classes, int)
                                             or self.num_classes < 2):
            raise ValueError(f'{where}: num_classes must be an int >= 2, got '
                             f'{self.num_classes!r}')
        if self.annotation is not None:
            object.__setattr__(self, 'annotation', _check_annotation(self.annotation, where))

    @property
    def gt_field(self) -> str:
        return f'gt_{self.field}'

    @property
    def pred_field(self) -> str:
        return f'pred_{self.field}'

    def to_dict(self) -> dict:
        """The declaration as plain data (``type`` = the kind class), e.g. for comparisons."""
        return dict(type=type(self).__name__, **asdict(self))

    def same_as(self, other: 'TaskSpec') -> bool:
        return isinstance(other, TaskSpec) and self.to_dict() == other.to_dict()


def _check_annotation(annotation: dict, where: str) -> dict:
    if not isinstance(annotation, dict):
        raise ValueError(f'{where}: annotation must be a dict(dir=..., suffix=..., decoder=...), '
                         f'got {annotation!r}')
    unknown = sorted(set(annotation) - {'dir', 'suffix', 'decoder', 'scale', 'offset'})
    if unknown:
        raise ValueError(f'{where}: annotation has unknown keys {unknown}')
    if not isinstance(annotation.get('dir'), str) or not annotation['dir']:
        raise ValueError(f'{where}: annotation.dir must name a folder under data_root')
    out = dict(dict(suffix='.png', scale=1.0, offset=0.0), **annotation)
    if out.get('decoder') not in ANNOTATION_DECODERS:
        raise ValueError(f'{where}: annotation.decoder={annotation.get("decoder")!r} is not one '
                         f'of {ANNOTATION_DECODERS}')
    return out
