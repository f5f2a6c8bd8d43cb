"""Analysis of trained models (used by ``tools/analysis``); not imported by ``import mmase``."""
from .expert_usage import (EXPERT_USAGE_FILES, build_model_and_loader, check_routed_backbone,
                           collect_routing, find_routed_layers, routing_similarity,
                           run_expert_usage, summarize_routing)
from .expert_usage_figures import (layer_grid, plot_selection_frequency, plot_shared_gate_mass,
                                   plot_task_similarity)

__all__ = [
    'EXPERT_USAGE_FILES', 'build_model_and_loader', 'check_routed_backbone', 'collect_routing',
    'find_routed_layers', 'layer_grid', 'plot_selection_frequency', 'plot_shared_gate_mass',
    'plot_task_similarity', 'routing_similarity', 'run_expert_usage', 'summarize_routing'
]
