from .launch import close_distributed, configure_device, default_collect_dirs

__all__ = ['close_distributed', 'configure_device', 'default_collect_dirs']
