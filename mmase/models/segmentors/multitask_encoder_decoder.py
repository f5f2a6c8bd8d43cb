"""One backbone, one decode head per task: the multi-task segmentor."""
import math
from typing import Dict, List, Optional, Sequence, Tuple

import torch.nn.functional as F
from mmengine.model import ModuleDict
from mmengine.structures import PixelData
from mmseg.models.segmentors.base import BaseSegmentor
from mmseg.models.utils import resize
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from torch import Tensor

from mmase.tasks import TaskSpec, check_tasks, get_task_spec


@MODELS.register_module()
class MultiTaskEncoderDecoder(BaseSegmentor):
    """Multi-task encoder-decoder for dense prediction.

    A *task-agnostic* backbone (any mmseg backbone, e.g. ``VisionTransformer``) runs once per
    batch and its features feed every head. A *task-conditioned* backbone (attribute
    ``task_conditioned = True``, e.g. ``ASEViT``) is run through
    ``backbone.forward_tasks(inputs, tasks) -> {task: features}`` (which itself runs once when
    it has no router and no task embedding); it may return auxiliary losses (router load
    balancing, mutual information) through ``backbone.pop_aux_losses()``.

    Each head sees its task's ground truth as ``gt_sem_seg``, so any mmseg decode head works for
    the segmentation tasks, and mmase's ``BinaryHead`` / ``DenseRegressionHead`` serve the binary
    and regression maps. Losses are reported as ``'<task>.<loss name>'`` times the task's weight.
    Predictions are written to the samples as ``pred_<field>`` (``mmase.tasks``) at the original
    image size: class ids (segmentation), foreground probability (binary), unit vectors
    (normals), metres (depth).

    Args:
        tasks (Sequence[str]): Task names (``mmase.tasks.TASK_SPECS``).
        backbone (dict): Backbone config.
        decode_heads (dict): Task name -> decode head config, one per task.
        neck (dict, optional): Neck config, applied to each task's features.
        loss_weights (dict, optional): Task name -> loss weight (default 1.0 each).
        train_cfg, test_cfg (dict, optional): Passed to the heads (mmseg convention).
        data_preprocessor (dict, optional): Usually ``MultiTaskDataPreProcessor``.
        align_corners (bool): ``align_corners`` of the resizes back to image size.
        init_cfg (dict, optional): Initialisation config.
        pretrained (None): Accepted as None only (mmseg's ``init_model`` sets it); weights go in
            ``backbone.pretrained``.
    """

    def __init__(self,
                 tasks: Sequence[str],
                 backbone: dict,
                 decode_heads: Dict[str, dict],
                 neck: Optional[dict] = None,
                 loss_weights: Optional[Dict[str, float]] = None,
                 train_cfg: Optional[dict] = None,
                 test_cfg: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 align_corners: bool = False,
                 init_cfg: Optional[dict] = None,
                 pretrained: None = None):
        if pretrained is not None:
            raise ValueError('model.pretrained is not used; set model.backbone.pretrained')
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.tasks = check_tasks(tasks, 'model.tasks')
        self._check_task_dict(decode_heads, 'model.decode_heads', required=True)
        self._check_task_dict(loss_weights or {}, 'model.loss_weights', required=False)
        self.specs: Dict[str, TaskSpec] = {t: get_task_spec(t) for t in self.tasks}
        self.loss_weights = {t: float((loss_weights or {}).get(t, 1.0)) for t in self.tasks}
        bad = {t: w for t, w in self.loss_weights.items() if not math.isfinite(w) or w < 0}
        if bad:
            raise ValueError(f'model.loss_weights must be finite and >= 0, got {bad}')
        for task in self.tasks:
            if not isinstance(decode_heads[task], dict):
                raise TypeError(f'model.decode_heads.{task} must be a head config dict, got '
                                f'{decode_heads[task]!r}')

        self.backbone = MODELS.build(backbone)
        self.task_conditioned = bool(getattr(self.backbone, 'task_conditioned', False))
        backbone_tasks = getattr(self.backbone, 'tasks', None)
        if self.task_conditioned and backbone_tasks is not None:
            missing = [t for t in self.tasks if t not in backbone_tasks]
            if missing:
                raise ValueError(f'model.backbone.tasks={tuple(backbone_tasks)} lacks the model '
                                 f'tasks {missing}')
        self.neck = MODELS.build(neck) if neck is not None else None
        # mmengine's ModuleDict (a BaseModule), so init_weights reaches every head's init_cfg
        self.decode_heads = ModuleDict({t: MODELS.build(decode_heads[t]) for t in self.tasks})
        self.align_corners = align_corners
        self.train_cfg = train_cfg
        self.test_cfg = test_cfg

    def _check_task_dict(self, mapping: dict, field: str, required: bool) -> None:
        if not isinstance(mapping, dict):
            raise TypeError(f'{field} must be a dict task -> value, got {type(mapping).__name__}')
        extra = [k for k in mapping if k not in self.tasks]
        if extra:
            raise ValueError(f'{field} names tasks {extra} that are not in model.tasks={self.tasks}')
        missing = [t for t in self.tasks if t not in mapping]
        if required and missing:
            raise ValueError(f'{field} has no entry for tasks {missing}')

    # ------------------------------------------------------------------ features
    def extract_feat(self, inputs: Tensor) -> Dict[str, Tuple[Tensor, ...]]:
        """Args: inputs (N, 3, H, W). Returns: task -> tuple of feature maps (N, C, h, w)."""
        if self.task_conditioned:
            feats = self.backbone.forward_tasks(inputs, self.tasks)
            if self.neck is not None:
                feats = {t: self.neck(f) for t, f in feats.items()}
            return feats
        shared = self.backbone(inputs)
        if self.neck is not None:
            shared = self.neck(shared)
        return {t: shared for t in self.tasks}

    def _task_samples(self, data_samples: List[SegDataSample], task: str) -> List[SegDataSample]:
        """Samples whose ``gt_sem_seg`` is ``task``'s ground truth (no copy of the data)."""
        field = self.specs[task].gt_field
        views = []
        for sample in data_samples:
            if field not in sample:
                raise KeyError(f'task {task!r}: data sample of {sample.get("img_path", "?")} '
                               f'has no {field}; is {task!r} in the dataset tasks?')
            view = SegDataSample(metainfo=sample.metainfo)
            view.gt_sem_seg = getattr(sample, field)
            views.append(view)
        return views

    # ------------------------------------------------------------------ modes
    def loss(self, inputs: Tensor, data_samples: List[SegDataSample]) -> dict:
        """Weighted per-task losses (plus the backbone's auxiliary losses)."""
        feats = self.extract_feat(inputs)
        losses = dict()
        for task in self.tasks:
            task_losses = self.decode_heads[task].loss(
                feats[task], self._task_samples(data_samples, task), self.train_cfg)
            weight = self.loss_weights[task]
            for name, value in task_losses.items():
                losses[f'{task}.{name}'] = value * weight if 'loss' in name else value
        pop_aux_losses = getattr(self.backbone, 'pop_aux_losses', None)
        if pop_aux_losses is not None:
            losses.update(pop_aux_losses())
        return losses

    def predict(self, inputs: Tensor,
                data_samples: Optional[List[SegDataSample]] = None) -> List[SegDataSample]:
        """Predict every task; returns the samples with ``pred_<field>`` set."""
        if data_samples is None:
            shape = tuple(inputs.shape[2:])
            data_samples = [
                SegDataSample(metainfo=dict(ori_shape=shape, img_shape=shape, pad_shape=shape,
                                            padding_size=(0, 0, 0, 0)))
                for _ in range(inputs.shape[0])
            ]
        batch_img_metas = [s.metainfo for s in data_samples]
        feats = self.extract_feat(inputs)
        for task in self.tasks:
            logits = self.decode_heads[task].predict(feats[task], batch_img_metas, self.test_cfg)
            self._postprocess(task, logits, data_samples)
        return data_samples

    def _forward(self, inputs: Tensor, data_samples=None) -> Dict[str, Tensor]:
        """Raw head outputs: task -> (N, C, h, w)."""
        feats = self.extract_feat(inputs)
        return {t: self.decode_heads[t].forward(feats[t]) for t in self.tasks}

    def encode_decode(self, inputs: Tensor, batch_img_metas: List[dict]) -> Dict[str, Tensor]:
        """Head outputs resized to the input size: task -> (N, C, H, W)."""
        feats = self.extract_feat(inputs)
        return {t: self.decode_heads[t].predict(feats[t], batch_img_metas, self.test_cfg)
                for t in self.tasks}

    # ------------------------------------------------------------------ post-processing
    def _postprocess(self, task: str, logits: Tensor, data_samples: List[SegDataSample]) -> None:
        """Crop padding, undo flips, resize to ``ori_shape`` and turn logits into predictions."""
        spec = self.specs[task]
        height, width = logits.shape[-2:]
        for i, sample in enumerate(data_samples):
            meta = sample.metainfo
            left, right, top, bottom = meta.get('img_padding_size',
                                                meta.get('padding_size', (0, 0, 0, 0)))
            out = logits[i:i + 1, :, top:height - bottom, left:width - right]
            if meta.get('flip', False):
                out = self._unflip(out, meta.get('flip_direction', 'horizontal'), spec)
            out = resize(out, size=tuple(meta['ori_shape'][:2]), mode='bilinear',
                         align_corners=self.align_corners, warning=False)[0]
            sample.set_field(PixelData(data=self._activate(spec, out, task)), spec.pred_field)

    @staticmethod
    def _unflip(out: Tensor, direction: str, spec: TaskSpec) -> Tensor:
        """Flip a (1, C, H, W) output back; normals also change the sign of x (or y)."""
        dim, component = (3, 0) if direction == 'horizontal' else (2, 1)
        out = out.flip(dims=(dim, ))
        if spec.kind == 'normals':
            out = out.clone()
            out[:, component] = -out[:, component]
        return out

    def _activate(self, spec: TaskSpec, out: Tensor, task: str) -> Tensor:
        """(C, H, W) head output -> the prediction format of ``spec.kind``."""
        if spec.kind == 'segmentation':
            if out.shape[0] == 1:
                threshold = self.decode_heads[task].threshold
                return (out.sigmoid() > threshold).long()
            return out.argmax(dim=0, keepdim=True)
        if spec.kind == 'binary':
            return out.sigmoid() if out.shape[0] == 1 else out.softmax(dim=0)[1:2]
        if spec.kind == 'normals':
            return F.normalize(out, p=2, dim=0)
        return out  # depth, metres
