"""Parameter-efficient adapters and MLP-level expert layers: they see a tensor and a task index,
nothing of ViTs or tasks' names."""
from .fgmoe import FGMoE, check_fgmoe_args
from .lora import LoRALinear
from .lora_merge import MergeableLoRA, merge_lora, unmerge_lora
from .moe_lora import (GATING_MODES, LoRAExperts, MoELoRALinear, check_int_arg,
                       check_moe_lora_args, has_router)
from .moe_lora_ffn import MoELoRAFFN
from .routers import (RoutingBookkeeping, TaskRouter, check_task_index, load_balance_loss,
                      moe_gates, select_gates, task_expert_mutual_information)
from .task_moe import TASK_MOE_GATE_NORMS, TASK_MOE_GATINGS, TaskMoE, check_task_moe_args

__all__ = [
    'FGMoE', 'GATING_MODES', 'LoRAExperts', 'LoRALinear', 'MergeableLoRA', 'MoELoRAFFN',
    'MoELoRALinear', 'merge_lora', 'unmerge_lora',
    'RoutingBookkeeping', 'TASK_MOE_GATE_NORMS', 'TASK_MOE_GATINGS', 'TaskMoE', 'TaskRouter',
    'check_fgmoe_args', 'check_int_arg', 'check_moe_lora_args', 'check_task_index',
    'check_task_moe_args', 'has_router', 'load_balance_loss', 'moe_gates', 'select_gates',
    'task_expert_mutual_information'
]
