from .launch import close_distributed, configure_device, default_collect_dirs, exit_distributed_rank

__all__ = ['close_distributed', 'configure_device', 'default_collect_dirs', 'exit_distributed_rank']
