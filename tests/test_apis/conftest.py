"""A tiny toy model (2 ViT blocks, random weights) saved as an mmengine checkpoint."""
import pytest
import torch
from api_helpers import TinyModel, tiny_config
from mmengine.runner.checkpoint import save_checkpoint


@pytest.fixture(scope='session')
def tiny_model(tmp_path_factory) -> TinyModel:
    from mmase.apis import init_model
    from mmase.datasets import PascalContextMTDataset
    torch.manual_seed(0)
    torch.set_num_threads(1)
    cfg = tiny_config()
    model = init_model(cfg, None)
    path = str(tmp_path_factory.mktemp('tiny_model') / 'tiny.pth')
    meta = dict(dataset_meta=dict(PascalContextMTDataset.METAINFO, tasks=list(model.tasks)))
    save_checkpoint(dict(state_dict=model.state_dict(), meta=meta), path)
    return TinyModel(cfg, path)
