# Single-task ViT for the ablations' Δm reference: 'human_parts' alone on the same frozen ViT-B/16
# with
# plain LoRA r=4 on qkv/proj (the MTL-ViT's backbone), its head, loss weight and schedule. Its
# metric goes into configs/_base_/stl_reference/pascal_mt_vit-b16_ase-ablation.py.
# ASE protocol of the ablations (Sec. 4): 224x224, 40 epochs, ViT-B/16.
_base_ = ['../../_base_/ase_protocol/ablation_vit-b.py']
tasks = ('human_parts', )
model = dict(
    backbone=dict(adapter=None, task_embedding=False),
    decode_heads=dict(_delete_=True, human_parts={{_base_.model.decode_heads.human_parts}}),
    loss_weights=dict(_delete_=True, human_parts={{_base_.model.loss_weights.human_parts}}))
