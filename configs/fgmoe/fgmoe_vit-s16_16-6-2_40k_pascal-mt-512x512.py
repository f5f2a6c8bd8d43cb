# Ablation, encoder-side FGMoE (not the paper's reading: see README.md; the paper's reading is
# fgmoe-decoder_vit-s16_16-6-2_40k_pascal-mt-512x512.py). FGMoE (Xu et al., 2025,
# arXiv 2507.19077) layers in the ViT: the MLP hidden dimension of every other block cut
# into 16 fine-grained slices of 96 units (per task copies, initialised from the pretrained MLP);
# per token a task router picks the top-6 of the 14 routed slices, 2 shared slices are always on,
# and a global expert (the frozen pretrained MLP) is mixed in with a gate that depends on the
# token and the task. Attention stays frozen (no LoRA, no task embedding). N-k-S = 16-6-2 in
# the name (N counts the shared slices).
_base_ = [
    '../_base_/models/ase_vit_pascal_mt.py',
    '../_base_/datasets/pascal_context_mt.py',
    '../_base_/stl_reference/pascal_mt_vit-s.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_40k.py',
]
tasks = ('semseg', 'human_parts', 'sal', 'normals', 'edge')
model = dict(
    backbone=dict(
        adapter=None, lora=None, task_embedding=False,
        mlp_moe=dict(type='FGMoE', blocks=(1, 3, 5, 7, 9, 11), num_experts=16, top_k=6,
                     num_shared=2, global_expert=True, task_specific_experts=True,
                     load_balance_weight=0.01)))
val_evaluator = dict(type='MultiTaskMetric', protocol='invpt',
                     stl_reference={{_base_.stl_reference}})
test_evaluator = val_evaluator
