from .launch import configure_device

__all__ = ['configure_device']
