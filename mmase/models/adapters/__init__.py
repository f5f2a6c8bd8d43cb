"""Parameter-efficient adapters: they see a tensor and a task index, nothing of ViTs or tasks."""
from .inject import wrap_linears
from .lora import LoRALinear
from .moe_lora import (GATING_MODES, MoELoRALinear, check_moe_lora_args, load_balance_loss,
                       moe_gates)
from .routers import TaskRouter, check_task_index

__all__ = [
    'GATING_MODES', 'LoRALinear', 'MoELoRALinear', 'TaskRouter', 'check_moe_lora_args',
    'check_task_index', 'load_balance_loss', 'moe_gates', 'wrap_linears'
]
