"""One backbone, one decode head per task: the multi-task segmentor."""
import math
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmengine.logging import print_log
from mmengine.model import ModuleDict
from mmengine.structures import PixelData
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.models.segmentors.base import BaseSegmentor
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from torch import Tensor

from mmase.models.backbones import MultiTaskBackbone
from mmase.tasks import TASK_SPECS, check_tasks, declare_tasks, get_task_spec
from . import output_restore
from .slide_inference import check_slide_cfg, slide_inference
from .task_addition import (TASK_ADDITION_KEYS, TaskFreezer, check_task_addition,
                            checkpoint_tasks, load_with_new_tasks)


@MODELS.register_module()
class MultiTaskEncoderDecoder(BaseSegmentor):
    """Multi-task encoder-decoder for dense prediction.

    A *task-agnostic* backbone (any mmseg backbone, e.g. ``VisionTransformer``) runs once per
    batch and its features feed every head. A multi-task backbone (a
    :class:`~mmase.models.backbones.MultiTaskBackbone`, e.g. ``ASEViT``) is run through
    ``backbone.forward_tasks(inputs, tasks) -> {task: features}`` (which itself runs once when
    it has no router and no task embedding), and its auxiliary losses (router load balancing,
    mutual information) join the loss through ``backbone.pop_aux_losses()``. The model's tasks
    are stated once: a multi-task backbone config without ``tasks`` gets the model's, and heads
    or loss weights of tasks the model does not have are left out (logged), so a config that
    changes ``model.tasks`` needs no other change.

    Each head sees its task's ground truth as ``gt_sem_seg``, so any mmseg decode head works for
    the segmentation tasks, and mmase's ``BinaryHead`` / ``DenseRegressionHead`` serve the binary
    and regression maps. Losses are reported as ``'<task>.<loss name>'`` times the task's weight.
    Predictions are written to the samples as ``pred_<field>`` at the original image size, each
    task's head output turned into a prediction by its declaration's ``activation`` (class ids,
    foreground probability, unit vectors, the raw value) and test-time flips undone with its
    ``flip_sign`` (the declarations of :mod:`mmase.tasks`).

    ``task_addition`` adds tasks to a trained model (docs/adding_a_task.md): ``dict(checkpoint=
    <.pth of a model with fewer tasks>, router_init=dict(<new task>=<checkpoint task whose
    routers and task embedding it starts from>), frozen_tasks=(<checkpoint tasks>) | 'old' | (),
    checkpoint_tasks=None)``. ``init_weights`` loads the checkpoint by task name
    (:mod:`.task_addition`); frozen tasks keep their parameters (and the shared backbone
    weights) and add no loss.

    Args:
        tasks (Sequence[str]): Declared task names (``mmase.tasks.TASK_SPECS``); a config
            states them once at its top level (``mmase.engine.experiment_tasks``).
        backbone (dict): Backbone config.
        decode_heads (dict): Task name -> decode head config, one per task.
        neck (dict, optional): Neck config, applied to each task's features.
        loss_weights (dict, optional): Task name -> loss weight (default 1.0 each).
        train_cfg, test_cfg (dict, optional): Passed to the heads (mmseg convention).
            ``test_cfg.mode``: ``'whole'`` (default) or ``'slide'`` with ``crop_size`` and
            ``stride`` (:mod:`.slide_inference`, every task from one pass per window).
        data_preprocessor (dict, optional): Usually ``MultiTaskDataPreProcessor``.
        align_corners (bool): ``align_corners`` of the resizes back to image size.
        init_cfg (dict, optional): Initialisation config.
        pretrained (None): Accepted as None only (mmseg's ``init_model`` sets it); weights go in
            ``backbone.pretrained``.
        custom_tasks (list[dict], optional): Task declarations to declare first (so that every
            process building the model knows them). Default: None.
        task_addition (dict, optional): See above. Default: None.
    """

    def __init__(self,
                 tasks: Optional[Sequence[str]] = None,
                 backbone: Optional[dict] = None,
                 decode_heads: Optional[Dict[str, dict]] = None,
                 neck: Optional[dict] = None,
                 loss_weights: Optional[Dict[str, float]] = None,
                 train_cfg: Optional[dict] = None,
                 test_cfg: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 align_corners: bool = False,
                 init_cfg: Optional[dict] = None,
                 pretrained: None = None,
                 custom_tasks: Optional[Sequence[dict]] = None,
                 task_addition: Optional[dict] = None):
        if pretrained is not None:
            raise ValueError('model.pretrained is not used; set model.backbone.pretrained')
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        declare_tasks(custom_tasks, 'model.custom_tasks')
        if tasks is None:
            raise ValueError(
                "model.tasks is not set: state the experiment's tasks once, at the top of the "
                "config (tasks = ('semseg', 'normals')), and build through MultiTaskRunner or "
                'mmase.engine.apply_experiment_tasks(cfg), which give them to the model, the '
                'datasets and the evaluator (or set model.tasks)')
        for value, field in ((backbone, 'model.backbone'), (decode_heads, 'model.decode_heads')):
            if value is None:
                raise ValueError(f'{field} is required')
        self.tasks = check_tasks(tasks, 'model.tasks')
        decode_heads = self._used(decode_heads, 'model.decode_heads')
        loss_weights = self._used(loss_weights or {}, 'model.loss_weights')
        self._check_task_dict(decode_heads, 'model.decode_heads', required=True)
        self._check_task_dict(loss_weights, 'model.loss_weights', required=False)
        self.specs = {t: get_task_spec(t, 'model.tasks') for t in self.tasks}
        self.loss_weights = {t: float((loss_weights or {}).get(t, 1.0)) for t in self.tasks}
        bad = {t: w for t, w in self.loss_weights.items() if not math.isfinite(w) or w < 0}
        if bad:
            raise ValueError(f'model.loss_weights must be finite and >= 0, got {bad}')
        for task in self.tasks:
            if not isinstance(decode_heads[task], dict):
                raise TypeError(f'model.decode_heads.{task} must be a head config dict, got '
                                f'{decode_heads[task]!r}')

        self.backbone = MODELS.build(self._with_tasks(backbone))
        if isinstance(self.backbone, MultiTaskBackbone):
            backbone_tasks = self.backbone.tasks
            missing = [t for t in self.tasks if t not in backbone_tasks]
            if missing:
                raise ValueError(f'model.backbone.tasks={tuple(backbone_tasks)} lacks the model '
                                 f'tasks {missing}')
            extra = [t for t in backbone_tasks if t not in self.tasks]
            if extra:  # routed and trained for nothing: no head reads them
                raise ValueError(f'model.backbone.tasks={tuple(backbone_tasks)} has tasks '
                                 f'{extra} that model.tasks={self.tasks} and model.decode_heads '
                                 f'do not have')
        self.neck = MODELS.build(neck) if neck is not None else None
        # mmengine's ModuleDict (a BaseModule), so init_weights reaches every head's init_cfg
        self.decode_heads = ModuleDict({t: MODELS.build(decode_heads[t]) for t in self.tasks})
        self.align_corners = align_corners
        self.train_cfg = train_cfg
        mode = (test_cfg or {}).get('mode', 'whole')
        if mode not in ('whole', 'slide'):
            raise ValueError(f"model.test_cfg.mode={mode!r}: choose 'whole' or 'slide'")
        #: ``(crop_size, stride)`` of sliding-window inference, None for whole-image
        self.slide = check_slide_cfg(test_cfg) if mode == 'slide' else None
        self.test_cfg = test_cfg
        self.task_addition = self._check_task_addition_keys(task_addition)
        self._freezer: Optional[TaskFreezer] = None
        #: the tasks whose losses train (all but the frozen ones of ``task_addition``)
        self.loss_tasks = self.tasks

    def _used(self, mapping, field: str):
        """``mapping`` without the declared tasks the model does not have (logged): the heads and
        loss weights of a base config serve any subset of its tasks. A name that is no declared
        task stays (and is an error naming it: a typo is not left out silently)."""
        if not isinstance(mapping, dict):
            return mapping
        unused = [k for k in mapping if k not in self.tasks and k in TASK_SPECS]
        if unused:
            print_log(f'{field}: tasks {unused} are not in model.tasks={self.tasks}; left out',
                      logger='current')
        return {k: v for k, v in mapping.items() if k not in unused}

    def _with_tasks(self, backbone: dict) -> dict:
        """The backbone config, given the model's tasks when it is a multi-task backbone that
        does not state its own."""
        if not isinstance(backbone, dict) or 'tasks' in backbone:
            return backbone
        backbone_type = backbone.get('type')
        cls = MODELS.get(backbone_type) if isinstance(backbone_type, str) else backbone_type
        if isinstance(cls, type) and issubclass(cls, MultiTaskBackbone):
            return dict(backbone, tasks=self.tasks)
        return backbone

    @staticmethod
    def _check_task_addition_keys(cfg: Optional[dict]) -> Optional[dict]:
        if cfg is None:
            return None
        if not isinstance(cfg, dict) or 'checkpoint' not in cfg:
            raise ValueError(f'model.task_addition must be dict(checkpoint=..., router_init=..., '
                             f'frozen_tasks=...), got {cfg!r}')
        unknown = sorted(set(cfg) - set(TASK_ADDITION_KEYS))
        if unknown:
            raise ValueError(f'model.task_addition has unknown keys {unknown}; known: '
                             f'{TASK_ADDITION_KEYS}')
        return dict(cfg)

    def init_weights(self):
        """Initialise as configured, then (``task_addition``) load the trained model's tensors by
        task name and freeze its frozen tasks."""
        super().init_weights()
        if self.task_addition is None:
            return
        from mmase.engine.checkpoint_check import load_checkpoint_file
        from mmase.engine.strict_loading import model_state_dict
        cfg = self.task_addition
        path = cfg['checkpoint']
        checkpoint = load_checkpoint_file(path, map_location='cpu')
        old_tasks = checkpoint_tasks(checkpoint, cfg.get('checkpoint_tasks'), path)
        router_init, frozen = check_task_addition(cfg, self.tasks, old_tasks, path)
        load_with_new_tasks(self, model_state_dict(checkpoint, ((r'^module\.', ''), )), old_tasks,
                            router_init, path)
        if frozen:
            self._freezer = TaskFreezer(self, frozen)
            self._freezer.snapshot()
            self._freezer.apply()
            self.loss_tasks = tuple(t for t in self.tasks if t not in frozen)

    def train(self, mode: bool = True):
        """Set the mode; frozen tasks (``task_addition``) stay frozen, their heads in eval."""
        super().train(mode)
        if self._freezer is not None:
            self._freezer.apply()
        return self

    def train_step(self, data, optim_wrapper):
        """mmengine's train step; then the frozen rows of the per-task tensors are written back
        (weight decay would move them)."""
        log_vars = super().train_step(data, optim_wrapper)
        if self._freezer is not None:
            self._freezer.restore()
        return log_vars

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
    def extract_feat(self, inputs: Tensor,
                     tasks: Optional[Sequence[str]] = None) -> Dict[str, Tuple[Tensor, ...]]:
        """Args: inputs (N, 3, H, W); tasks (default all). Returns: task -> tuple of feature
        maps (N, C, h, w)."""
        tasks = self.tasks if tasks is None else tuple(tasks)
        if isinstance(self.backbone, MultiTaskBackbone):
            feats = self.backbone.forward_tasks(inputs, tasks)
            if self.neck is not None:
                feats = {t: self.neck(f) for t, f in feats.items()}
            return feats
        shared = self.backbone(inputs)
        if self.neck is not None:
            shared = self.neck(shared)
        return {t: shared for t in tasks}

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
        feats = self.extract_feat(inputs, self.loss_tasks)
        losses = dict()
        for task in self.loss_tasks:
            task_losses = self.decode_heads[task].loss(
                feats[task], self._task_samples(data_samples, task), self.train_cfg)
            weight = self.loss_weights[task]
            for name, value in task_losses.items():
                losses[f'{task}.{name}'] = value * weight if 'loss' in name else value
        if isinstance(self.backbone, MultiTaskBackbone):
            losses.update(self.backbone.pop_aux_losses())
        return losses

    def predict(self, inputs: Tensor,
                data_samples: Optional[List[SegDataSample]] = None) -> List[SegDataSample]:
        """Predict every task; returns the samples with ``pred_<field>`` set.

        A head with mmseg's own ``predict`` / ``predict_by_feat`` (forward, then one bilinear
        resize to the padded input size) hands its output at its own resolution to
        :meth:`_postprocess`, which folds that resize into the one to ``ori_shape`` (resized
        once, same numbers up to float32 rounding: :func:`.output_restore.restore_prediction`);
        any other head runs its own ``predict``."""
        if data_samples is None:
            shape = tuple(inputs.shape[2:])
            data_samples = [
                SegDataSample(metainfo=dict(ori_shape=shape, img_shape=shape, pad_shape=shape,
                                            padding_size=(0, 0, 0, 0)))
                for _ in range(inputs.shape[0])
            ]
        batch_img_metas = [s.metainfo for s in data_samples]
        if self.slide is not None:  # outputs at the input size: restored in the usual way
            logits = self.inference(inputs, batch_img_metas)
            for task in self.tasks:
                self._postprocess(task, logits[task], data_samples)
            return data_samples
        feats = self.extract_feat(inputs)
        for task in self.tasks:
            head = self.decode_heads[task]
            input_resize = self._input_resize(head, batch_img_metas)
            if input_resize is None:
                logits = head.predict(feats[task], batch_img_metas, self.test_cfg)
            else:
                logits = head.forward(feats[task])
            self._postprocess(task, logits, data_samples, input_resize)
        return data_samples

    @staticmethod
    def _input_resize(head, batch_img_metas: List[dict]) -> Optional[Tuple[tuple, bool]]:
        """``((H, W), align_corners)`` of the resize that ``head.predict`` applies to its output
        (mmseg 1.x ``BaseDecodeHead.predict_by_feat``: the first image's ``pad_shape``, else its
        ``img_shape``, the head's ``align_corners``), or None where the head does something else
        (its own ``predict`` or ``predict_by_feat``; mmseg's slide inference, marked by a
        ``torch.Size`` ``img_shape``; a meta without ``img_shape``)."""
        cls = type(head)
        if (getattr(cls, 'predict', None) is not BaseDecodeHead.predict
                or getattr(cls, 'predict_by_feat', None) is not BaseDecodeHead.predict_by_feat):
            return None
        meta = batch_img_metas[0]
        if 'img_shape' not in meta or isinstance(meta['img_shape'], torch.Size):
            return None
        size = meta['pad_shape'] if 'pad_shape' in meta else meta['img_shape']
        return (int(size[0]), int(size[1])), bool(head.align_corners)

    def _forward(self, inputs: Tensor, data_samples=None) -> Dict[str, Tensor]:
        """Raw head outputs: task -> (N, C, h, w)."""
        feats = self.extract_feat(inputs)
        return {t: self.decode_heads[t].forward(feats[t]) for t in self.tasks}

    def encode_decode(self, inputs: Tensor, batch_img_metas: List[dict]) -> Dict[str, Tensor]:
        """Head outputs resized to the input size: task -> (N, C, H, W)."""
        feats = self.extract_feat(inputs)
        return {t: self.decode_heads[t].predict(feats[t], batch_img_metas, self.test_cfg)
                for t in self.tasks}

    def inference(self, inputs: Tensor, batch_img_metas: List[dict]) -> Dict[str, Tensor]:
        """Head outputs at the input size, whole-image or by sliding windows (``test_cfg``):
        task -> (N, C, H, W)."""
        if self.slide is None:
            return self.encode_decode(inputs, batch_img_metas)
        return slide_inference(self.encode_decode, inputs, batch_img_metas, *self.slide)

    # ------------------------------------------------------------------ post-processing
    def _postprocess(self, task: str, logits: Tensor, data_samples: List[SegDataSample],
                     input_resize: Optional[Tuple[tuple, bool]] = None) -> None:
        """Crop padding, undo flips, resize to ``ori_shape`` and turn logits ``(N, C, h, w)``
        into predictions (:func:`.output_restore.restore_prediction`: one pass, no full-size
        logits). ``input_resize``: the head's resize to the input size (:meth:`_input_resize`)
        that ``logits`` still need, folded in; None: ``logits`` are at the input size."""
        spec = self.specs[task]
        for i, sample in enumerate(data_samples):
            out = logits[i:i + 1]
            pred = output_restore.restore_prediction(out, sample.metainfo, spec,
                                                     self.align_corners,
                                                     self._threshold(spec, out[0], task),
                                                     input_resize=input_resize)
            sample.set_field(PixelData(data=pred), spec.pred_field)

    def restore_output(self, out: Tensor, meta: dict, spec) -> Tensor:
        """``(1, C, h, w)`` output of one image -> ``(C, H, W)`` at its ``ori_shape``
        (:func:`.output_restore.restore_output`: crop, unflip, resize; still logits)."""
        return output_restore.restore_output(out, meta, spec, self.align_corners)

    @staticmethod
    def _unflip(out: Tensor, direction: str, spec) -> Tensor:
        """:func:`.output_restore.unflip`."""
        return output_restore.unflip(out, direction, spec)

    def _activate(self, spec, out: Tensor, task: str) -> Tensor:
        """(C, H, W) head output -> the prediction (:func:`.output_restore.activate`)."""
        return output_restore.activate(spec, out, self._threshold(spec, out, task))

    def _threshold(self, spec, out: Tensor, task: str) -> Optional[float]:
        """A 1-channel ``argmax`` head's foreground threshold (``head.threshold``), else None."""
        if spec.activation == 'argmax' and out.shape[0] == 1:
            return self.decode_heads[task].threshold
        return None
