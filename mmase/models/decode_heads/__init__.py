from .binary_head import BinaryHead
from .dense_map_head import DenseMapHead
from .dense_regression_head import DenseRegressionHead

__all__ = ['BinaryHead', 'DenseMapHead', 'DenseRegressionHead']
