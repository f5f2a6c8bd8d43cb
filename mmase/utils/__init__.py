from ..registry import register_all_modules  # mmengine's hook for the mmase scope
from .launch import close_distributed, configure_device, default_collect_dirs, exit_distributed_rank

__all__ = ['close_distributed', 'configure_device', 'default_collect_dirs', 'exit_distributed_rank',
           'register_all_modules']
