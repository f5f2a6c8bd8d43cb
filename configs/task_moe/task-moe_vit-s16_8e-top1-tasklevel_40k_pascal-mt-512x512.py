# Task-MoE with task-level routing: the router sees only the task (a learned logit vector per
# task and block), so every token of a task goes to the same expert MLP (top-1: the dense
# model's compute) - the seed's routing of "examples from different tasks". Switch-style gates
# train the per-task logits from the task loss; the router loss is Mod-Squad's task-expert
# mutual information (ours: the per-task Switch balance would push every task's tokens apart,
# against routing by task), weight 0.01.
_base_ = ['./task-moe_vit-s16_8e-top2-router_40k_pascal-mt-512x512.py']
model = dict(
    backbone=dict(
        mlp_moe=dict(top_k=1, gating='task_level', gate_norm='all', load_balance_weight=0.0,
                     mi_loss_weight=0.01)))
