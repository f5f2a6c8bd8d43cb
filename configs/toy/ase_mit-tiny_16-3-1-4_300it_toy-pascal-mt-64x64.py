# ASE (16/3/1/4) around a tiny random-init MiT (SegFormer; 2 stages of 32 / 64 channels), five
# PASCAL-Context tasks on the embedded toy dataset (64x64 crops), 300 iterations on CPU.
_base_ = ['./ase_vit-tiny_16-3-1-4_300it_toy-pascal-mt-64x64.py']
head = dict(in_channels=[32, 64], in_index=[0, 1])
model = dict(
    backbone=dict(
        _delete_=True,
        type='TaskRoutedBackbone',
        backbone=dict(type='MixVisionTransformer', embed_dims=16, num_stages=2,
                      num_layers=[2, 2], num_heads=[2, 4], patch_sizes=[7, 3], strides=[4, 2],
                      sr_ratios=[2, 1], out_indices=(0, 1), mlp_ratio=2),
        adapter=dict(num_experts=16, top_k=3, num_shared=1, rank=4, alpha=4,
                     shared_gating='adaptive', mi_loss_weight=0.005),
        lora=dict(rank=4, alpha=4),
        task_embedding=True),
    decode_heads=dict(semseg=head, human_parts=head, sal=head, normals=head, edge=head))
