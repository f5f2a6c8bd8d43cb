# Task-MoE as the seed describes it (Gupta et al., 2022): top-1 routing, every token costs one
# expert MLP, "the same computational cost as that of a dense model"; one router per task
# (token-level routing). Switch-style gates (softmax over all experts, kept at the chosen one) so
# that the task loss trains the routers too. The top-2 config is the GShard-style option.
_base_ = ['./task-moe_vit-s16_8e-top2-router_40k_pascal-mt-512x512.py']
model = dict(backbone=dict(mlp_moe=dict(top_k=1, gating='task_router', gate_norm='all')))
