"""Test-time augmentation for multi-task models: flip and multi-scale views averaged per task."""
from typing import Dict, List

import torch
import torch.nn.functional as F
from mmengine.model import BaseTTAModel
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from torch import Tensor


@MODELS.register_module()
class MultiTaskTTAModel(BaseTTAModel):
    """Average a ``MultiTaskEncoderDecoder``'s views (``TestTimeAug`` of resizes and flips).

    Each view's head outputs are cropped of padding, flipped back and resized to the original
    image, then turned into per-task quantities that can be averaged, by the task's declared
    ``activation`` (``mmase.tasks``):

    - ``argmax`` (segmentation): class probabilities (softmax; a 1-channel head: sigmoid),
      averaged, then argmax (1-channel: ``> head.threshold``);
    - ``sigmoid`` (saliency, edges): foreground probability, averaged;
    - ``normalize`` (normals): each view's unit vectors, averaged, then L2-normalised; on a
      flipped view the declared ``flip_sign`` channel is negated first (normals: **x on a
      horizontal flip**, y on a vertical one);
    - ``identity`` (depth in metres, other regressed maps): averaged.

    Ground truth and meta information come from the first view (the test-time annotations are
    loaded after the flip, at the original size). Args as mmengine's ``BaseTTAModel``
    (``module``: the segmentor config).
    """

    def test_step(self, data) -> list:
        """Args: data with ``inputs`` / ``data_samples``, each a list (one entry per view) of
        batches. Returns: one merged sample per image."""
        views = [{key: value[i] for key, value in data.items()} for i in range(len(data['inputs']))]
        sums: Dict[str, List[Tensor]] = {}
        first = None
        segmentor = self.module
        specs = segmentor.specs
        for view in views:
            view = segmentor.data_preprocessor(view, False)
            samples = view['data_samples']
            if first is None:
                first = samples
            metas = [s.metainfo for s in samples]
            with torch.no_grad():
                logits = segmentor.inference(view['inputs'], metas)
            for task, out in logits.items():
                maps = [self._to_original(out[i:i + 1], metas[i], specs[task])
                        for i in range(len(samples))]
                if task not in sums:
                    sums[task] = maps
                else:
                    sums[task] = [a + b for a, b in zip(sums[task], maps)]
        for task, maps in sums.items():
            spec = specs[task]
            for sample, total in zip(first, maps):
                mean = total / len(views)
                sample.set_field(PixelData(data=self._finalize(mean, spec, task)), spec.pred_field)
        return first

    def _to_original(self, out: Tensor, meta: dict, spec) -> Tensor:
        """(1, C, h, w) head output of one view -> (C, H, W) averageable map at ``ori_shape``
        (cropped, flipped back and resized by the segmentor's own ``restore_output``)."""
        out = self.module.restore_output(out, meta, spec)
        activation = spec.activation
        if activation == 'argmax':
            return out.sigmoid() if out.shape[0] == 1 else out.softmax(dim=0)
        if activation == 'sigmoid':
            return out.sigmoid() if out.shape[0] == 1 else out.softmax(dim=0)[1:2]
        if activation == 'normalize':
            return F.normalize(out, p=2, dim=0)
        return out  # identity: metres, any regressed value

    def _finalize(self, mean: Tensor, spec, task: str) -> Tensor:
        if spec.activation == 'argmax':
            if mean.shape[0] == 1:
                return (mean > self.module.decode_heads[task].threshold).long()
            return mean.argmax(dim=0, keepdim=True)
        if spec.activation == 'normalize':
            return F.normalize(mean, p=2, dim=0)
        return mean

    def merge_preds(self, data_samples_list):  # test_step merges before activation
        raise NotImplementedError('MultiTaskTTAModel merges in test_step')
