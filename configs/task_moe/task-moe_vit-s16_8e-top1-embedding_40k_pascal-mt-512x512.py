# Task-MoE with the task embedding added to the input of one shared router, top-1 routing with
# Switch-style gates (softmax over all experts, kept at the chosen one): the compute of the dense
# model per token.
_base_ = ['./task-moe_vit-s16_8e-top2-router_40k_pascal-mt-512x512.py']
model = dict(backbone=dict(mlp_moe=dict(top_k=1, gating='task_embedding', gate_norm='all')))
