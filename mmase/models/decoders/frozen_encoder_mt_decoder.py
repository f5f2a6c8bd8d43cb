"""FrozenEncoderMTDecoder: a frozen, task-agnostic encoder and a trainable multi-task decoder,
behind the interface of a task-conditioned backbone.

The segmentor (:class:`~mmase.models.segmentors.MultiTaskEncoderDecoder`) calls
``backbone.forward_tasks(inputs, tasks) -> {task: feature maps}`` and
``backbone.pop_aux_losses()``; this module answers both, so the FGMoE decoder
(:class:`~mmase.models.decoders.FGMoEDecoder`) needs no segmentor of its own and each task's
light head reads its task's decoder maps.

- **Encoder**: any mmseg backbone (mmseg's ``VisionTransformer``, ``MixVisionTransformer``,
  ``SwinTransformer``, ...) or a task-agnostic mmase one (``ASEViT`` with ``adapter=None,
  lora=None, task_embedding=False``). Its parameters never train (``requires_grad=False``),
  it stays in eval mode (normalisation statistics and dropout frozen, also under
  ``model.train()``) and runs once per batch under ``torch.no_grad()``: it is the same for
  every task. Pretrained weights come from the encoder's own config (``pretrained=`` /
  ``init_cfg``), a local file.
- **Decoder**: fuses the encoder maps once per batch (task-agnostic, trainable), then runs its
  task-conditioned blocks for all tasks in one pass: the fused tokens repeated per task with one
  task index per sample (the batched pass of :class:`MultiTaskBackbone`).
- **Router losses** of the decoder's FGMoE layers reach the total loss through
  :meth:`pop_aux_losses` as ``loss_lb_decoder_<task>`` and ``loss_mi_decoder``.

At build, one probe image (``probe_size`` pixels square, zeros) runs through the encoder, so
that its feature widths are checked against ``decoder.in_channels`` before training starts.
"""
from typing import Optional, Sequence, Tuple

import torch
from mmseg.registry import MODELS

from mmase.models.backbones.multitask_backbone import MultiTaskBackbone
from mmase.models.injection import RoutedFamily


@MODELS.register_module()
class FrozenEncoderMTDecoder(MultiTaskBackbone):
    """A frozen encoder run once per batch and a multi-task decoder run for every task.

    Args:
        encoder (dict): Config of the encoder, any registered backbone returning a tuple (or
            list) of ``(N, C_i, h_i, w_i)`` maps; a task-conditioned mmase backbone must be
            task-agnostic (no router, no task embedding).
        decoder (dict): Config of the decoder (e.g. ``FGMoEDecoder``); it receives
            ``num_tasks`` and ``record_routing`` from here, and must provide
            ``in_channels``, ``fuse(feats)``, ``decode(tokens, grid, task)``,
            ``routed_layer_names``, ``load_balance_weight`` and ``mi_loss_weight``.
        tasks (Sequence[str]): Task names, in order (task ``i`` uses router ``i``).
        probe_size (int): Side of the probe image that checks the encoder's widths at build.
            Default: 64.
        record_routing (bool): Record the decoder's routing statistics. Default: False.
        init_cfg (dict, optional): mmengine init config (the encoder's own ``init_cfg``
            loads its pretrained weights when the runner initialises the model).

    Forward: ``inputs`` ``(N, 3, H, W)`` -> ``{task: tuple of (N, C, h, w)}``
    (:meth:`forward_tasks`), or one task's tuple (:meth:`forward`).
    """

    #: Suffix of the decoder's router-loss keys (``loss_lb_decoder_<task>``).
    LOSS_SUFFIX = '_decoder'

    def __init__(self,
                 encoder: dict,
                 decoder: dict,
                 tasks: Sequence[str],
                 probe_size: int = 64,
                 record_routing: bool = False,
                 init_cfg: Optional[dict] = None):
        super().__init__(tasks, 'batched', record_routing, init_cfg=init_cfg)
        for field, cfg in (('encoder', encoder), ('decoder', decoder)):
            if not isinstance(cfg, dict) or 'type' not in cfg:
                raise TypeError(f'{field} must be a config dict with a type, got {cfg!r}')
        taken = sorted({'num_tasks', 'record_routing'} & set(decoder))
        if taken:
            raise ValueError(f'decoder: {taken} are set by FrozenEncoderMTDecoder (from tasks '
                             f'and record_routing); drop them from the decoder config')
        if isinstance(probe_size, bool) or not isinstance(probe_size, int) or probe_size < 1:
            raise ValueError(f'probe_size={probe_size!r} must be a positive int')
        self.encoder = MODELS.build(encoder)
        if isinstance(self.encoder, MultiTaskBackbone) and not self.encoder.task_agnostic:
            raise ValueError(f"encoder ({encoder['type']}) is task-conditioned (routers or task "
                             f'embeddings); a frozen encoder runs once for all tasks, so it '
                             f'must be task-agnostic (for ASEViT: adapter=None, '
                             f'task_embedding=False, no mlp_moe)')
        self._freeze_encoder()
        self.decoder = MODELS.build(dict(decoder, num_tasks=len(self.tasks),
                                         record_routing=record_routing))
        self._check_widths(probe_size)

        names = tuple(f'decoder.{name}' for name in self.decoder.routed_layer_names)
        self.routed_families = (RoutedFamily(self.LOSS_SUFFIX, names,
                                             self.decoder.load_balance_weight,
                                             self.decoder.mi_loss_weight), )

    # ------------------------------------------------------------------------------------------
    @property
    def task_agnostic(self) -> bool:
        """False: the decoder routes per task (the encoder alone is task-agnostic)."""
        return False

    def _freeze_encoder(self) -> None:
        for param in self.encoder.parameters():
            param.requires_grad_(False)
        self.encoder.eval()

    def train(self, mode: bool = True):
        """Set the mode of the decoder; the encoder stays frozen and in eval mode."""
        super().train(mode)
        self._freeze_encoder()
        return self

    @torch.no_grad()
    def encode(self, inputs: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """The frozen encoder's maps ``(N, C_i, h_i, w_i)`` of ``(N, 3, H, W)`` images."""
        if isinstance(self.encoder, MultiTaskBackbone):
            feats = self.encoder(inputs, self.encoder.tasks[0])  # task-agnostic: any task
        else:
            feats = self.encoder(inputs)
        if isinstance(feats, torch.Tensor):
            feats = (feats, )
        return tuple(feats)

    def _check_widths(self, probe_size: int) -> None:
        was_training = self.encoder.training
        self.encoder.eval()
        param = next(self.encoder.parameters(), None)
        probe = torch.zeros(1, 3, probe_size, probe_size,
                            device=param.device if param is not None else None)
        widths = [f.shape[1] for f in self.encode(probe)]
        self.encoder.train(was_training)
        self._freeze_encoder()
        expected = list(self.decoder.in_channels)
        if widths != expected:
            raise ValueError(f'decoder.in_channels={expected} does not match the encoder: '
                             f'{type(self.encoder).__name__} gives {len(widths)} feature maps '
                             f'of widths {widths}')

    # the two halves of a multi-task pass (MultiTaskBackbone composes them)
    def _embed(self, inputs: torch.Tensor) -> Tuple[torch.Tensor, Tuple[int, int]]:
        """Encoder once (no gradient), then the decoder's task-agnostic fusion."""
        if inputs.dim() != 4:
            raise ValueError(f'inputs must be (N, C, H, W), got shape {tuple(inputs.shape)}')
        return self.decoder.fuse(self.encode(inputs))

    def _encode(self, tokens: torch.Tensor, grid: Tuple[int, int]) -> Tuple[torch.Tensor, ...]:
        return self.decoder.decode(tokens, grid, self.task_context.current())

    def extra_repr(self) -> str:
        return f'tasks={self.tasks}'

