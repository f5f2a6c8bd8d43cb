"""ASEViT: the paper's placement and notation, timm equivalence, freezing, batched multi-task,
task embeddings, router losses (load balancing, mutual information), routing stats, MLP expert
layers (FGMoE, Task-MoE), errors."""
import pytest
import torch
import torch.nn as nn
from mmseg.registry import MODELS
from timm.models.vision_transformer import VisionTransformer

from mmase.models.adapters import FGMoE, LoRAExperts, MoELoRAFFN, MoELoRALinear, TaskMoE
from mmase.models.backbones import ASEViT, MultiTaskBackbone, resize_pos_embed

TINY = dict(embed_dims=32, num_layers=2, num_heads=2)
TASKS = ('semseg', 'sal', 'normals')


#: The paper's model at a tiny size: 4/2/1/2 experts beside each FFN, plain LoRA on the
#: attention linears, task embeddings.
PAPER = dict(adapter=dict(num_experts=4, top_k=2, num_shared=1, rank=2), lora=dict(rank=2),
             task_embedding=True)
#: The per-linear ablation: 4/2/1/2 experts on every linear.
PER_LINEAR = dict(adapter=dict(placement='linear', num_experts=4, top_k=2, num_shared=1, rank=2),
                  lora=None, task_embedding=False)


def tiny_vit(**kwargs):
    cfg = dict(arch=dict(TINY), img_size=32, patch_size=8, out_indices=(0, 1), tasks=TASKS,
               **PAPER)
    cfg.update(kwargs)
    model = ASEViT(**cfg)
    if cfg.get('pretrained') is not None:
        model.init_weights()  # weights load at init_weights, never at build
    return model


def randomise_adapters(model, seed=0):
    """Nonzero B and task embeddings (fresh ones are the identity) so tests see the experts."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, LoRAExperts):
                module.lora_B.copy_(0.1 * torch.randn(module.lora_B.shape, generator=generator))
        if model.task_embed is not None:
            model.task_embed.copy_(0.1 * torch.randn(model.task_embed.shape,
                                                     generator=generator))


def timm_vit(depth=2, embed_dim=32, img_size=32, **kwargs):
    torch.manual_seed(0)
    return VisionTransformer(img_size=img_size, patch_size=8, embed_dim=embed_dim, depth=depth,
                             num_heads=2, **kwargs).eval()


def tokens(feature_map):
    """(N, C, h, w) -> (N, h*w, C), the layout of timm's patch tokens."""
    return feature_map.flatten(2).transpose(1, 2)


@pytest.fixture
def timm_checkpoint(tmp_path):
    model = timm_vit()
    path = tmp_path / 'tiny_vit.pth'
    torch.save(model.state_dict(), path)
    return model, str(path)


def test_matches_timm_after_loading_its_state_dict(timm_checkpoint):
    reference, path = timm_checkpoint
    model = tiny_vit(pretrained=path).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = reference.forward_features(x)[:, 1:]  # final norm applied, cls dropped
        outs = model(x, 'sal')
    assert [tuple(o.shape) for o in outs] == [(2, 32, 4, 4), (2, 32, 4, 4)]
    torch.testing.assert_close(tokens(outs[1]), expected, rtol=0, atol=1e-5)
    randomise_adapters(model)  # with trained experts the features move away
    with torch.no_grad():
        assert (tokens(model(x, 'sal')[1]) - expected).abs().max() > 1e-3


def test_other_input_size_resamples_pos_embed_like_timm(timm_checkpoint):
    reference, path = timm_checkpoint
    dynamic = timm_vit(dynamic_img_size=True)
    dynamic.load_state_dict(reference.state_dict())
    model = tiny_vit(pretrained=path).eval()
    x = torch.randn(1, 3, 48, 40)
    with torch.no_grad():
        out = model(x, 'semseg')[1]
        expected = dynamic.forward_features(x)[:, 1:]
    assert out.shape == (1, 32, 6, 5)
    torch.testing.assert_close(tokens(out), expected, rtol=0, atol=1e-5)


def test_checkpoint_pos_embed_resampled_to_training_grid(timm_checkpoint):
    reference, path = timm_checkpoint  # 4x4 grid
    model = tiny_vit(pretrained=path, img_size=48)  # 6x6 grid
    expected = resize_pos_embed(reference.pos_embed.detach(), (6, 6), (4, 4))
    assert model.pos_embed.shape == (1, 37, 32)
    torch.testing.assert_close(model.pos_embed.detach(), expected)


def test_loads_timm_vit_small_patch16_224_state_dict(tmp_path):
    import timm
    reference = timm.create_model('vit_small_patch16_224', pretrained=False).eval()
    path = tmp_path / 'vit_small_patch16_224.pth'
    torch.save(reference.state_dict(), path)
    model = ASEViT(arch='vit-s', img_size=224, patch_size=16, out_indices=(3, 11),
                   tasks=('semseg', ), adapter=dict(blocks=(0, )), lora=dict(blocks=(1, )),
                   task_embedding=True, pretrained=str(path))
    model.init_weights()
    model.eval()
    x = torch.randn(1, 3, 64, 48)  # another size: pos_embed resampled at forward
    reference.set_input_size(img_size=(64, 48))
    with torch.no_grad():
        out = model(x, 'semseg')[1]
        expected = reference.forward_features(x)[:, 1:]
    assert out.shape == (1, 384, 4, 3)
    torch.testing.assert_close(tokens(out), expected, rtol=0, atol=1e-4)


def test_final_norm_off_gives_the_raw_block_output(timm_checkpoint):
    reference, path = timm_checkpoint
    reference.norm = nn.Identity()
    model = tiny_vit(pretrained=path, final_norm=False).eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(tokens(model(x, 'semseg')[1]),
                                   reference.forward_features(x)[:, 1:], rtol=0, atol=1e-5)


def test_pretrained_errors(tmp_path, timm_checkpoint, capsys):
    missing = str(tmp_path / 'nowhere.pth')
    with pytest.raises(FileNotFoundError, match='nowhere.pth'):
        tiny_vit(pretrained=missing)
    deeper = tmp_path / 'deeper.pth'
    torch.save(timm_vit(depth=3).state_dict(), deeper)
    with pytest.raises(ValueError, match=r"unexpected keys \['blocks.2.attn.proj.bias'"):
        tiny_vit(pretrained=str(deeper))
    with pytest.raises(ValueError, match=r"missing keys \['blocks.2.attn.proj.bias'"):
        tiny_vit(pretrained=timm_checkpoint[1], arch=dict(TINY, num_layers=3))
    wider = tmp_path / 'wider.pth'
    torch.save(timm_vit(embed_dim=48).state_dict(), wider)
    with pytest.raises(ValueError, match=r'shape mismatch in cls_token: checkpoint \(1, 1, 48\)'):
        tiny_vit(pretrained=str(wider))
    odd = timm_vit().state_dict()
    odd['pos_embed'] = odd['pos_embed'][:, :13]
    torch.save(odd, tmp_path / 'odd.pth')
    with pytest.raises(ValueError, match='not 1 class token \\+ a square grid'):
        tiny_vit(pretrained=str(tmp_path / 'odd.pth'))
    # the allowlisted reader of every checkpoint: damaged files and code-running pickles are
    # refused naming the file, never loaded with weights_only=False
    (tmp_path / 'empty.pth').write_bytes(b'')
    with pytest.raises(ValueError, match='empty.pth.*the file is empty'):
        tiny_vit(pretrained=str(tmp_path / 'empty.pth'))

    class RunsCode:
        def __reduce__(self):
            return (print, ('pickle ran code', ))

    torch.save({'pos_embed': RunsCode()}, tmp_path / 'evil.pth')
    with pytest.raises(Exception, match='evil.pth') as info:
        tiny_vit(pretrained=str(tmp_path / 'evil.pth'))
    assert str(info.value).startswith('refusing to') and 'never with' in str(info.value)
    assert 'pickle ran code' not in capsys.readouterr().out


@pytest.mark.parametrize('placement', ['ffn', 'linear'])
def test_gradients_reach_exactly_the_trainable_parameters(placement):
    extra = dict(trainable=('norm', ))
    if placement == 'linear':
        extra.update(PER_LINEAR, lora=None)
    model = tiny_vit(**extra)
    randomise_adapters(model)
    model.train()
    outs = model.forward_tasks(torch.randn(2, 3, 32, 32))
    sum(o.sum() for feats in outs.values() for o in feats).backward()
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    with_grad = {n for n, p in model.named_parameters() if p.grad is not None}
    assert trainable == with_grad
    if placement == 'ffn':  # experts beside the FFN, plain LoRA on qkv/proj, task embeddings
        expected = {f'blocks.{b}.mlp.experts.{p}' for b in range(2)
                    for p in ('lora_A', 'lora_B', 'router.weight')}
        expected |= {f'blocks.{b}.attn.{layer}.{p}' for b in range(2)
                     for layer in ('qkv', 'proj') for p in ('lora_A', 'lora_B')}
        expected |= {'task_embed'}
    else:
        expected = {f'blocks.{b}.{layer}.{p}' for b in range(2)
                    for layer in ('attn.qkv', 'attn.proj', 'mlp.fc1', 'mlp.fc2')
                    for p in ('lora_A', 'lora_B', 'router.weight')}
    expected |= {f'blocks.{b}.norm{i}.{p}' for b in range(2) for i in (1, 2)
                 for p in ('weight', 'bias')} | {'norm.weight', 'norm.bias'}
    assert trainable == expected
    assert all(torch.count_nonzero(model.get_parameter(n).grad) > 0 for n in trainable)


def test_paper_placement_keeps_timm_names_and_wraps_the_ffn():
    model = tiny_vit()
    assert model.adapter_names == ['blocks.0.mlp', 'blocks.1.mlp']
    assert model.lora_names == [f'blocks.{b}.attn.{n}' for b in range(2) for n in ('qkv', 'proj')]
    assert isinstance(model.blocks[0].mlp, MoELoRAFFN)
    assert isinstance(model.blocks[0].mlp.fc1, nn.Linear)  # the frozen FFN, intact
    assert model.blocks[0].attn.qkv.router is None and model.blocks[0].attn.qkv.rank == 2
    names = set(model.state_dict())
    assert {'blocks.0.mlp.fc1.weight', 'blocks.0.mlp.fc2.bias',
            'blocks.0.attn.qkv.base_layer.weight', 'task_embed'} <= names
    experts = model.blocks[1].mlp.experts
    assert (experts.num_experts, experts.num_sparse, experts.in_features,
            experts.out_features) == (4, 3, 32, 32)  # d -> d, beside the FFN
    assert torch.count_nonzero(model.task_embed) == 0 and model.task_embed.shape == (3, 32)


def test_task_embedding_is_added_before_the_first_block():
    model = tiny_vit(adapter=None, lora=None).eval()
    captured = []
    model.blocks[0].register_forward_pre_hook(lambda m, args: captured.append(args[0]))
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        model.task_embed[TASKS.index('sal')] = torch.arange(32.0)
        model(x, 'semseg')
        model(x, 'sal')
    torch.testing.assert_close(captured[1] - captured[0],
                               torch.arange(32.0).expand(1, 17, 32))  # every token, cls too
    only = tiny_vit(task_embedding=('sal', ))
    assert only.task_embed.shape == (1, 32)
    assert not only.task_agnostic


def test_train_keeps_base_frozen():
    model = tiny_vit(**PER_LINEAR)
    weight = model.blocks[0].attn.qkv.base_layer.weight
    assert not weight.requires_grad and not model.pos_embed.requires_grad
    weight.requires_grad_(True)
    model.train()
    assert not weight.requires_grad
    assert model.blocks[0].attn.qkv.lora_A.requires_grad


@pytest.mark.parametrize('placement', ['ffn', 'linear'])
def test_batched_multitask_equals_sequential(placement):
    torch.manual_seed(0)
    model = tiny_vit(**(PER_LINEAR if placement == 'linear' else {}))
    randomise_adapters(model)
    model.eval()
    router = (model.blocks[1].mlp.experts.router if placement == 'ffn' else
              model.blocks[1].mlp.fc1.router).weight
    x = torch.randn(2, 3, 32, 32)
    batched = model.forward_tasks(x)
    batched_grads = torch.autograd.grad(sum((i + 1) * feats[1].sum() for i, feats in
                                            enumerate(batched.values())), [router])
    model.multitask_mode = 'sequential'
    sequential = model.forward_tasks(x)
    sequential_grads = torch.autograd.grad(sum((i + 1) * feats[1].sum() for i, feats in
                                               enumerate(sequential.values())), [router])
    assert list(batched) == list(sequential) == list(TASKS)
    for task in TASKS:
        for got, want in zip(batched[task], sequential[task]):
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(batched_grads[0], sequential_grads[0], rtol=1e-4, atol=1e-5)
    # tasks differ from each other once the experts are trained
    assert (batched['semseg'][1] - batched['sal'][1]).abs().max() > 1e-3
    # a subset, in the caller's order
    subset = model.forward_tasks(x, ('normals', 'semseg'))
    assert list(subset) == ['normals', 'semseg']
    with pytest.raises(ValueError, match="task 'depth' is not one of this model's tasks"):
        model.forward_tasks(x, ('depth', ))


def test_load_balance_losses_collected_per_task():
    # One adapted layer with zero router weights: all logits equal, so every P_i = 1/E and
    # E * sum_i f_i P_i = sum_i f_i = 1 exactly; the weighted loss is the weight.
    model = tiny_vit(adapter=dict(num_experts=4, top_k=2, num_shared=1, rank=2,
                                  blocks=(0, ), load_balance_weight=0.5))
    nn.init.zeros_(model.blocks[0].mlp.experts.router.weight)
    x = torch.randn(2, 3, 32, 32)
    model.eval()
    model.forward_tasks(x)
    assert model.pop_aux_losses() == {}  # eval: nothing recorded
    model.train()
    model.forward_tasks(x, ('semseg', 'normals'))
    losses = model.pop_aux_losses()
    assert sorted(losses) == ['loss_lb_normals', 'loss_lb_semseg']
    for value in losses.values():
        assert value.item() == pytest.approx(0.5)
    assert model.pop_aux_losses() == {}  # cleared
    model.forward(x, 'sal')
    model.forward(x, 'sal')
    losses = model.pop_aux_losses()
    assert list(losses) == ['loss_lb_sal'] and losses['loss_lb_sal'].item() == pytest.approx(0.5)


def test_load_balance_loss_trains_the_routers():
    model = tiny_vit(adapter=dict(num_experts=4, top_k=1, num_shared=0, rank=2,
                                  shared_gating='none', load_balance_weight=0.01))
    model.train()
    model(torch.randn(2, 3, 32, 32), 'normals')
    loss = model.pop_aux_losses()['loss_lb_normals']
    loss.backward()
    grad = model.blocks[1].mlp.experts.router.weight.grad
    assert loss.item() > 0
    assert torch.count_nonzero(grad[TASKS.index('normals')]) > 0
    assert torch.count_nonzero(grad[TASKS.index('semseg')]) == 0


def test_no_load_balance_by_default():
    model = tiny_vit().train()
    model.forward_tasks(torch.randn(1, 3, 32, 32))
    assert model.pop_aux_losses() == {}


def test_mutual_information_loss_over_the_layers():
    # loss_mi = -w * sum over the expert layers of I(T; E), from all tasks' tokens of the step;
    # the batched and the sequential pass give the same value, and it trains the routers.
    model = tiny_vit(adapter=dict(num_experts=4, top_k=2, num_shared=1, rank=2,
                                  mi_loss_weight=0.5))
    randomise_adapters(model)
    x = torch.randn(2, 3, 32, 32)
    model.train()
    model.forward_tasks(x)
    losses = model.pop_aux_losses()
    assert list(losses) == ['loss_mi']
    infos = []
    for mode in ('sequential', 'batched'):
        model.multitask_mode = mode
        model.forward_tasks(x)
        experts = [model.get_submodule(n).experts for n in model.adapter_names]
        infos.append([e.pop_mutual_information() for e in experts])
        assert all(0 < float(i) < torch.log(torch.tensor(3.0)) for i in infos[-1])
    torch.testing.assert_close(torch.stack(infos[0]), torch.stack(infos[1]))
    torch.testing.assert_close(losses['loss_mi'], -0.5 * torch.stack(infos[1]).sum())
    losses['loss_mi'].backward()
    assert torch.count_nonzero(model.blocks[0].mlp.experts.router.weight.grad) > 0
    # the last layer's experts do not feed any router: the loss reaches its router only
    assert model.blocks[1].mlp.experts.lora_B.grad is None
    model.forward(x, 'sal')  # one task alone: I = 0
    assert model.pop_aux_losses()['loss_mi'].item() == 0.0


def test_routing_stats_off_by_default_and_on_demand():
    model = tiny_vit(**PER_LINEAR).eval()
    x = torch.randn(2, 3, 32, 32)
    model.forward_tasks(x)
    assert model.routing_stats() == {}
    assert all(m._stats is None for m in model.modules() if isinstance(m, MoELoRALinear))
    model.record_routing = True
    model.forward_tasks(x, ('semseg', 'sal'))
    stats = model.routing_stats()
    assert sorted(stats) == ['sal', 'semseg']
    assert sorted(stats['sal']) == sorted(f'blocks.{b}.{layer}' for b in range(2)
                                          for layer in ('attn.qkv', 'attn.proj', 'mlp.fc1',
                                                        'mlp.fc2'))
    layer = stats['sal']['blocks.1.mlp.fc2']
    assert layer['tokens'] == 2 * 17  # 2 images x (16 patches + cls)
    assert layer['counts'].shape == (3, ) and layer['counts'].sum().item() == 2 * 17 * 2
    assert layer['selection_rate'].sum().item() == pytest.approx(2.0)  # top_k
    assert layer['sparse_mass'] + layer['shared_mass'] == pytest.approx(1.0)  # adaptive
    assert 0 < layer['shared_mass'] < 1
    model.reset_routing_stats()
    assert model.routing_stats() == {}
    model.record_routing = False
    model(x, 'semseg')
    assert model.routing_stats() == {}


def test_fixed_gating_shared_mass_is_num_shared():
    model = tiny_vit(adapter=dict(num_experts=4, top_k=1, num_shared=2, rank=1,
                                  shared_gating='fixed'), record_routing=True).eval()
    model(torch.randn(1, 3, 32, 32), 'semseg')
    layer = model.routing_stats()['semseg']['blocks.0.mlp']
    assert layer['counts'].shape == (2, )  # the sparse pool: N - S = 2
    assert layer['shared_mass'] == pytest.approx(2.0)
    assert layer['sparse_mass'] == pytest.approx(1.0)


def test_build_from_registry_and_select_layers():
    model = MODELS.build(dict(type='ASEViT', arch=dict(TINY, mlp_ratio=2.0), img_size=(32, 48),
                              patch_size=16, out_indices=-1, tasks=('semseg', ),
                              adapter=dict(placement='linear', num_experts=1, top_k=1,
                                           num_shared=0, rank=2, shared_gating='none',
                                           targets=('fc1', ), blocks=(1, ))))
    assert isinstance(model, MultiTaskBackbone)
    assert model.adapter_names == ['blocks.1.mlp.fc1']
    assert isinstance(model.blocks[1].mlp.fc1, MoELoRALinear)
    assert model.blocks[1].mlp.fc1.router is None  # plain LoRA
    assert isinstance(model.blocks[0].mlp.fc1, nn.Linear)
    assert model.blocks[1].mlp.fc1.base_layer.out_features == 64
    outs = model(torch.randn(1, 3, 32, 48), 'semseg')
    assert len(outs) == 1 and outs[0].shape == (1, 32, 2, 3)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert trainable == 2 * (32 + 64)


def test_named_architectures():
    model = ASEViT(arch='vit-t', img_size=32, patch_size=16, out_indices=(3, 11),
                   tasks=('semseg', ), adapter=None)
    assert (model.embed_dims, model.num_layers, len(model.blocks)) == (192, 12, 12)
    assert model.blocks[0].attn.num_heads == 3
    assert not any(p.requires_grad for p in model.parameters())  # no adapters, no patterns
    assert model.out_indices == (3, 11)


def test_unknown_task_at_forward():
    model = tiny_vit()
    with pytest.raises(KeyError, match="task 'edge' is not one of"):
        model(torch.randn(1, 3, 32, 32), 'edge')


@pytest.mark.parametrize('kwargs,error,message', [
    (dict(adapter=dict(num_experts=3, top_k=4, num_shared=0)), ValueError,
     'adapter.top_k=4 exceeds the sparse pool of 3 experts'),
    (dict(adapter=dict(num_experts=16, top_k=3, num_shared=16)), ValueError,
     'adapter.num_shared=16 leaves no sparse expert'),
    (dict(adapter=dict(num_experts=16, top_k=3, num_shared=1, active_experts=3)), ValueError,
     r'adapter.active_experts=3 does not match adapter.top_k \+ adapter.num_shared'),
    (dict(adapter=dict(placement='beside')), ValueError,
     "adapter.placement='beside' is not one of"),
    (dict(adapter=dict(targets=('qkv', ))), ValueError, "is for placement='linear'"),
    (dict(adapter=dict(mi_loss_weight=-0.1)), ValueError, 'adapter.mi_loss_weight=-0.1'),
    (dict(adapter=dict(num_experts=1, top_k=1, num_shared=0, shared_gating='none',
                       mi_loss_weight=0.1)), ValueError, 'needs a router'),
    (dict(task_embedding=('sal', 'depth')), ValueError,
     "task_embedding: task 'depth' is not one of this model's tasks"),
    (dict(task_embedding='sal'), TypeError, 'task_embedding must be True, False or a list'),
    (dict(lora=dict(rank=0)), ValueError, 'lora.rank=0 must be >= 1'),
    (dict(lora=dict(targets=('fc3', ))), ValueError, "lora.targets: unknown layer 'fc3'"),
    (dict(lora=dict(ranks=4)), ValueError, r"lora: unknown keys \['ranks'\]"),
    (dict(PER_LINEAR, lora=dict()), ValueError, 'adapter.targets and lora.targets both wrap'),
    (dict(adapter=dict(rank=0)), ValueError, 'adapter.rank=0 must be >= 1'),
    (dict(adapter=dict(placement='linear', targets=('qkv', 'fc3'))), ValueError,
     "adapter.targets: unknown layer 'fc3'"),
    (dict(adapter=dict(placement='linear', targets=())), ValueError, 'adapter.targets is empty'),
    (dict(adapter=dict(shared_gating='soft')), ValueError,
     "adapter.shared_gating='soft' is not one of"),
    (dict(adapter=dict(shared_gating='none', num_shared=1)), ValueError,
     'adapter.num_shared=1'),
    (dict(adapter=dict(experts=4)), ValueError, r"adapter: unknown keys \['experts'\]"),
    (dict(adapter=dict(blocks=(0, 2))), ValueError, 'adapter.blocks: 2 is not a block index'),
    (dict(adapter=dict(num_experts=1, top_k=1, num_shared=0, shared_gating='none',
                       load_balance_weight=0.1)), ValueError, 'needs a router'),
    (dict(adapter=dict(load_balance_weight=-1)), ValueError, 'load_balance_weight=-1'),
    (dict(tasks=('semseg', '')), ValueError, 'non-empty strings'),
    (dict(tasks=()), ValueError, 'at least one task'),
    (dict(tasks=('sal', 'sal')), ValueError, 'repeated task'),
    (dict(arch='vit-xl'), ValueError, "arch='vit-xl' is not one of"),
    (dict(arch=dict(embed_dims=32, num_layers=2)), ValueError, r"missing keys \['num_heads'\]"),
    (dict(arch=dict(TINY, num_heads=3)), ValueError, 'not divisible by arch.num_heads=3'),
    (dict(out_indices=(0, 2)), ValueError, 'out_indices: 2 is not a block index'),
    (dict(trainable=('nrom', )), ValueError, "trainable: pattern 'nrom' matches no parameter"),
    (dict(multitask_mode='parallel'), ValueError, "multitask_mode='parallel' is not one of"),
    (dict(img_size=4), ValueError, 'smaller than patch_size'),
])
def test_build_errors(kwargs, error, message):
    with pytest.raises(error, match=message):
        tiny_vit(**kwargs)


# ----------------------------------------------------------------------------------------------
# MLP-level expert layers (mlp_moe)
FGMOE = dict(type='FGMoE', num_experts=4, top_k=2, num_shared=1)
TASK_MOE = dict(type='TaskMoE', num_experts=3, top_k=2)


def perturb_mlp_experts(model, seed=0):
    """Make expert copies differ from the pretrained MLP (they start as exact copies)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (FGMoE, TaskMoE)):
                for name, param in module.named_parameters():
                    if param.requires_grad and 'router' not in name:
                        param.add_(0.05 * torch.randn(param.shape, generator=generator))


@pytest.mark.parametrize('mlp_moe', [
    dict(FGMOE, top_k=3),  # every routed slice, gates 1 with a zero router
    dict(TASK_MOE, gating='task_router'),
    dict(TASK_MOE, gating='task_embedding', top_k=1),
])
def test_mlp_experts_start_from_the_pretrained_mlp(timm_checkpoint, mlp_moe):
    # The timm weights load into the plain ViT, then the MLPs become expert layers; copied
    # experts reproduce timm's features (FGMoE: with all slices on and unit gates; Task-MoE:
    # 'topk' gates sum to 1, for any routing).
    reference, path = timm_checkpoint
    model = tiny_vit(pretrained=path, adapter=None, mlp_moe=dict(mlp_moe, blocks=(0, 1))).eval()
    assert model.mlp_moe_names == ['blocks.0.mlp', 'blocks.1.mlp']
    layer = model.blocks[1].mlp
    timm_fc1 = reference.blocks[1].mlp.fc1.weight
    if isinstance(layer, FGMoE):
        for module in model.modules():
            if isinstance(module, FGMoE):
                nn.init.zeros_(module.router.weight)
        assert layer.expert_fc1_weight.shape == (len(TASKS), 128, 32)
        torch.testing.assert_close(layer.fc1.weight, timm_fc1)  # the global expert
        assert 'blocks.1.mlp.fc1.weight' in model.state_dict()  # keeps its timm name
    else:
        assert layer.fc1_weight.shape == (3, 128, 32)
    torch.testing.assert_close(layer.expert_fc1_weight[2] if isinstance(layer, FGMoE)
                               else layer.fc1_weight[2], timm_fc1)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = reference.forward_features(x)[:, 1:]
        for task in ('semseg', 'normals'):
            torch.testing.assert_close(tokens(model(x, task)[1]), expected, rtol=0, atol=1e-5)
        perturb_mlp_experts(model)
        assert (tokens(model(x, 'semseg')[1]) - expected).abs().max() > 1e-3


@pytest.mark.parametrize('mlp_moe', [FGMOE, dict(TASK_MOE, gating='task_embedding')])
def test_mlp_experts_with_attention_adapters_train_exactly_their_parameters(mlp_moe):
    model = tiny_vit(adapter=dict(placement='linear', num_experts=4, top_k=2, num_shared=1,
                                  rank=2, targets=('qkv', 'proj')),
                     lora=None, task_embedding=False, mlp_moe=dict(mlp_moe, blocks=(1, )))
    assert model.adapter_names == [f'blocks.{b}.attn.{n}' for b in (0, 1) for n in ('qkv', 'proj')]
    assert isinstance(model.blocks[0].mlp.fc1, nn.Linear)  # block 0 keeps its plain MLP
    randomise_adapters(model)
    perturb_mlp_experts(model)
    model.train()
    outs = model.forward_tasks(torch.randn(2, 3, 32, 32))
    sum(o.sum() for feats in outs.values() for o in feats).backward()
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    with_grad = {n for n, p in model.named_parameters() if p.grad is not None}
    assert trainable == with_grad
    expected = {f'blocks.{b}.attn.{layer}.{p}' for b in range(2) for layer in ('qkv', 'proj')
                for p in ('lora_A', 'lora_B', 'router.weight')}
    if mlp_moe['type'] == 'FGMoE':  # intra-task slices and the router; global expert frozen
        expected |= {f'blocks.1.mlp.{p}' for p in ('expert_fc1_weight', 'expert_fc1_bias',
                                                  'expert_fc2_weight', 'expert_fc2_bias',
                                                  'router.weight')}
        assert not model.blocks[1].mlp.fc1.weight.requires_grad
    else:  # every expert, the shared router and the task embedding
        expected |= {f'blocks.1.mlp.{p}' for p in ('fc1_weight', 'fc1_bias', 'fc2_weight',
                                                  'fc2_bias', 'router.weight',
                                                  'task_embedding')}
    assert trainable == expected
    # the global expert trains when a `trainable` pattern names it
    if mlp_moe['type'] == 'FGMoE':
        unfrozen = tiny_vit(adapter=None, mlp_moe=dict(mlp_moe, blocks=(1, )),
                            trainable=(r'blocks\.1\.mlp\.fc[12]\.', ))
        assert unfrozen.blocks[1].mlp.fc2.bias.requires_grad


@pytest.mark.parametrize('mlp_moe', [FGMOE, dict(TASK_MOE, top_k=1, gate_norm='all')])
def test_batched_multitask_equals_sequential_with_mlp_experts(mlp_moe):
    torch.manual_seed(0)
    model = tiny_vit(adapter=None, mlp_moe=dict(mlp_moe, blocks=(0, 1)))
    perturb_mlp_experts(model)
    model.eval()
    x = torch.randn(2, 3, 32, 32)
    batched = model.forward_tasks(x)
    model.multitask_mode = 'sequential'
    sequential = model.forward_tasks(x)
    for task in TASKS:
        for got, want in zip(batched[task], sequential[task]):
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    assert (batched['semseg'][1] - batched['sal'][1]).abs().max() > 1e-3


def test_mlp_expert_load_balance_losses_and_routing_stats():
    # zero routers: P_i = 1/E, so every Switch loss is 1 and the weighted loss is the weight
    model = tiny_vit(adapter=dict(placement='linear', num_experts=4, top_k=2, num_shared=1,
                                  rank=2, targets=('qkv', ), load_balance_weight=0.5),
                     lora=None, mlp_moe=dict(FGMOE, blocks=(1, ), load_balance_weight=0.25),
                     record_routing=True)
    for module in model.modules():
        if isinstance(module, (FGMoE, MoELoRALinear)):
            nn.init.zeros_(module.router.weight)
    x = torch.randn(2, 3, 32, 32)
    model.train()
    model.forward_tasks(x, ('semseg', 'normals'))
    losses = model.pop_aux_losses()
    assert sorted(losses) == ['loss_lb_mlp_normals', 'loss_lb_mlp_semseg', 'loss_lb_normals',
                              'loss_lb_semseg']
    assert losses['loss_lb_mlp_semseg'].item() == pytest.approx(0.25)
    assert losses['loss_lb_normals'].item() == pytest.approx(0.5)
    assert model.pop_aux_losses() == {}
    stats = model.routing_stats()
    assert sorted(stats['semseg']) == ['blocks.0.attn.qkv', 'blocks.1.attn.qkv',
                                       'blocks.1.mlp']
    layer = stats['semseg']['blocks.1.mlp']
    assert layer['tokens'] == 2 * 17 and layer['counts'].shape == (3, )  # 3 routed slices
    assert layer['selection_rate'].sum().item() == pytest.approx(2.0)  # top_k
    assert layer['global_mass'] == pytest.approx(0.5)  # sigmoid(0)
    model.record_routing = False
    assert not model.blocks[1].mlp.record_routing
    model.reset_routing_stats()
    assert model.routing_stats() == {}


def test_task_moe_load_balance_only():
    model = tiny_vit(adapter=None, mlp_moe=dict(TASK_MOE, load_balance_weight=0.01))
    model.train()
    model(torch.randn(1, 3, 32, 32), 'sal')
    losses = model.pop_aux_losses()
    assert list(losses) == ['loss_lb_mlp_sal'] and losses['loss_lb_mlp_sal'].item() > 0
    losses['loss_lb_mlp_sal'].backward()
    assert torch.count_nonzero(model.blocks[0].mlp.router.weight.grad[TASKS.index('sal')]) > 0


def test_frozen_backbone_for_decoder_only_fine_tuning():
    model = tiny_vit(adapter=dict(placement='linear', num_experts=4, top_k=2, num_shared=1,
                                  rank=2, targets=('qkv', )), lora=None, mlp_moe=FGMOE,
                     frozen=True)
    assert isinstance(model.blocks[0].mlp, FGMoE)
    assert not any(p.requires_grad for p in model.parameters())
    model.train()
    assert not any(p.requires_grad for p in model.parameters())
    plain = tiny_vit(adapter=None, lora=None, task_embedding=False)  # no flag needed
    assert not any(p.requires_grad for p in plain.parameters())


@pytest.mark.parametrize('kwargs,error,message', [
    (dict(mlp_moe=dict(FGMOE, num_experts=5)), ValueError,
     'mlp_moe.num_experts=5 does not divide the MLP hidden size 128'),
    (dict(mlp_moe=dict(FGMOE, top_k=4)), ValueError,
     r'mlp_moe.top_k=4 exceeds the 3 routed slices \(mlp_moe.num_experts=4 - '
     r'mlp_moe.num_shared=1\)'),
    (dict(mlp_moe=dict(TASK_MOE, top_k=4)), ValueError,
     'mlp_moe.top_k=4 exceeds mlp_moe.num_experts=3'),
    (dict(mlp_moe=dict(TASK_MOE, gating='soft')), ValueError,
     "mlp_moe.gating='soft' is not one of"),
    (dict(mlp_moe=dict(TASK_MOE, num_shared=1)), ValueError,
     r"mlp_moe: unknown keys \['num_shared'\] for TaskMoE"),
    (dict(mlp_moe=dict(num_experts=4)), ValueError, "mlp_moe: missing key 'type'"),
    (dict(mlp_moe=dict(type='ASEViT')), ValueError,
     "mlp_moe.type='ASEViT' is not a registered MLP expert layer"),
    (dict(mlp_moe=dict(type='NoSuchMoE')), ValueError,
     "mlp_moe.type='NoSuchMoE' is not a registered MLP expert layer"),
    (dict(mlp_moe=dict(FGMOE, blocks=(3, ))), ValueError,
     'mlp_moe.blocks: 3 is not a block index'),
    (dict(mlp_moe=dict(FGMOE, load_balance_weight=-1)), ValueError,
     'mlp_moe.load_balance_weight=-1'),
    (dict(mlp_moe=dict(FGMOE, blocks=(1, ))), ValueError,
     "adapter.placement='ffn' puts experts beside blocks.1.mlp, inside the MLP blocks.1.mlp"),
    (dict(PER_LINEAR, mlp_moe=dict(FGMOE, blocks=(1, ))), ValueError,
     "adapter.targets would wrap blocks.1.mlp.fc1, inside the MLP blocks.1.mlp"),
    (dict(adapter=None, lora=dict(targets=('fc1', )), mlp_moe=dict(FGMOE, blocks=(0, ))),
     ValueError, "lora.targets would wrap blocks.0.mlp.fc1, inside the MLP blocks.0.mlp"),
    (dict(adapter=None, mlp_moe=dict(FGMOE, mi_loss_weight=-2)), ValueError,
     'mlp_moe.mi_loss_weight=-2'),
    (dict(frozen=True, trainable=('norm', )), ValueError, 'frozen=True freezes the whole'),
    (dict(frozen=True, mlp_moe=dict(TASK_MOE, load_balance_weight=0.1), adapter=None),
     ValueError, 'mlp_moe.load_balance_weight=0.1 has nothing to train'),
])
def test_mlp_moe_build_errors(kwargs, error, message):
    with pytest.raises(error, match=message):
        tiny_vit(**kwargs)
