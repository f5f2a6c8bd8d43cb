"""require_matching_checkpoint: a checkpoint that does not match the model is an error naming
its first missing / unexpected / mismatched keys, before any weight is loaded."""
from types import SimpleNamespace

import pytest
import torch
from mmengine.logging import MMLogger

from mmase.engine.strict_loading import CheckpointMismatchError, require_matching_checkpoint


def _runner(model):
    hooks = []
    runner = SimpleNamespace(model=model, logger=MMLogger.get_instance('strict_loading_test'),
                             _has_loaded=False, hooks_called=hooks,
                             call_hook=lambda name, **kwargs: hooks.append(name))
    require_matching_checkpoint(runner)
    return runner


def _model():
    return torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 2))


def test_matching_checkpoint_loads(tmp_path):
    source = _model()
    path = str(tmp_path / 'ok.pth')
    torch.save({'state_dict': {f'module.{k}': v for k, v in source.state_dict().items()}}, path)
    runner = _runner(_model())
    runner.load_checkpoint(path)  # the DDP prefix is revised away as mmengine does
    assert torch.equal(runner.model[1].weight, source[1].weight)
    assert runner._has_loaded and runner.hooks_called == ['after_load_checkpoint']


def test_mismatch_names_first_keys_and_loads_nothing(tmp_path):
    state = _model().state_dict()
    del state['1.bias']
    state['0.weight'] = torch.zeros(5, 4)
    state.update({f'extra.{i}': torch.zeros(1) for i in range(5)})
    path = str(tmp_path / 'bad.pth')
    torch.save({'state_dict': state}, path)
    runner = _runner(_model())
    before = runner.model[1].weight.clone()
    with pytest.raises(CheckpointMismatchError) as info:
        runner.load_checkpoint(path)
    message = str(info.value)
    assert message.startswith(f'checkpoint {path} does not match the model: ')
    assert '1 missing keys (1.bias)' in message
    assert '5 unexpected keys (extra.0, extra.1, extra.2, ... (2 more))' in message
    assert '1 shape mismatches (0.weight: checkpoint (5, 4), model (3, 4))' in message
    assert '--allow-partial-checkpoint' in message
    assert torch.equal(runner.model[1].weight, before) and not runner._has_loaded
