"""Read a split file (one image id a line), as both multi-task datasets do."""
from typing import List, Optional

import mmengine
from mmengine import fileio


def read_split_ids(ann_file: str, dataset: str, example: str,
                   backend_args: Optional[dict] = None) -> List[str]:
    """Non-empty ids of ``ann_file``, in file order.

    Args:
        ann_file: Path of the split file.
        dataset: Dataset class name, for the error when ``ann_file`` is empty.
        example: An example split path of that dataset, for the same error.
        backend_args: mmengine file backend arguments.

    Raises:
        ValueError: No split file given, or it lists no id.
        FileNotFoundError: The split file is missing.
    """
    if not ann_file:
        raise ValueError(f'{dataset}: ann_file (the split file, e.g. {example}) is required')
    if not fileio.exists(ann_file, backend_args=backend_args):
        raise FileNotFoundError(f'split file {ann_file} not found')
    ids = [line.strip() for line in mmengine.list_from_file(ann_file, backend_args=backend_args)]
    ids = [i for i in ids if i]
    if not ids:
        raise ValueError(f'split file {ann_file} lists no image id')
    return ids
