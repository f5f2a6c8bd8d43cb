"""One way to put task-routed experts, plain LoRA, FFN-level experts and task embeddings into
a backbone: typed adapter configs (:mod:`.adapter_configs`), per-family layouts
(:mod:`.layout`), one injector (:mod:`.injector`), one task context (:mod:`.task_context`).

Below the backbones, above the adapters: it knows where a family keeps its blocks, never what
a task is."""
from . import beit_layout, mmseg_layouts  # noqa: F401  (register the layouts)
from .adapter_configs import (AdapterConfigs, FFNExpertsConfig, LoRAConfig, RoutedExpertsConfig,
                              TaskEmbeddingConfig, check_renamed_keys, parse_adapter_configs)
from .checkpointing import checkpoint_blocks
from .injector import Injection, RoutedFamily, adapter_parameters, inject
from .layout import LAYOUTS, FFNSite, Layout, LinearSite, layout_for, register_layout
from .plain_view import PlainView
from .task_context import TaskContext
from .wrap import wrap_linears, wrap_modules

__all__ = [
    'AdapterConfigs', 'FFNExpertsConfig', 'FFNSite', 'Injection', 'LAYOUTS', 'LoRAConfig',
    'Layout', 'LinearSite', 'PlainView', 'RoutedExpertsConfig', 'RoutedFamily', 'TaskContext',
    'TaskEmbeddingConfig', 'adapter_parameters', 'check_renamed_keys', 'checkpoint_blocks',
    'inject', 'layout_for', 'parse_adapter_configs', 'register_layout', 'wrap_linears',
    'wrap_modules'
]
