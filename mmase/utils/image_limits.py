"""A pixel limit for every image mmase decodes, checked from the file header before decoding.

A 900 KB PNG can declare 30000 x 30000 pixels (2.7 GB as BGR uint8, tens of GB once every task
is predicted at that size): the size is read from the header (PIL's format parsers, which decode
no pixels) and an image over the limit is refused with an error naming the file, its size and
the limit. Used by ``LoadImageFromFile`` (datasets and inference pipelines),
``mmase.apis.inference_model``, ``MultiTaskInferencer`` and ``demo/image_demo.py``.

The limit, in pixels (width x height): the ``max_pixels`` argument of those entry points, else
the environment variable ``MMASE_MAX_IMAGE_PIXELS``, else :data:`DEFAULT_MAX_PIXELS` (2**28 =
268 megapixels: 16384 x 16384, above every camera's photo, 200-megapixel phones included).
"""
import io
import os
import struct
from typing import Optional, Tuple, Union

#: Default limit in pixels (width x height): 2**28, e.g. 16384 x 16384.
DEFAULT_MAX_PIXELS = 2**28
#: Environment variable overriding :data:`DEFAULT_MAX_PIXELS` (an integer > 0).
ENV_VAR = 'MMASE_MAX_IMAGE_PIXELS'


class ImageTooLargeError(ValueError):
    """An image declares more pixels than the limit."""


def max_image_pixels(max_pixels: Optional[int] = None) -> int:
    """The limit in pixels: ``max_pixels`` if given, else ``$MMASE_MAX_IMAGE_PIXELS``, else
    :data:`DEFAULT_MAX_PIXELS`.

    Raises:
        ValueError: the value is not an integer > 0 (names the argument or the variable).
    """
    if max_pixels is not None:
        source, value = 'max_pixels', max_pixels
    elif os.environ.get(ENV_VAR, '').strip():
        source, value = ENV_VAR, os.environ[ENV_VAR].strip()
    else:
        return DEFAULT_MAX_PIXELS
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = 0
    if isinstance(value, bool) or number <= 0 or (isinstance(value, float)
                                                  and value != number):
        raise ValueError(f'{source}={value!r}: the image pixel limit must be an integer > 0')
    return number


def image_header_size(data: Union[bytes, str], name: Optional[str] = None) -> Tuple[int, int]:
    """``(width, height)`` declared by an encoded image's header; no pixel is decoded.

    Args:
        data (bytes | str): The encoded file's bytes, or a local file path.
        name (str, optional): How errors name the image. Defaults to the path (or ``'image'``).

    Raises:
        ValueError: empty, or not a format PIL can identify (the message names the image).
    """
    from PIL import Image
    if isinstance(data, (str, os.PathLike)):
        name = name or str(data)
        with open(data, 'rb') as f:
            return image_header_size(f.read(), name)
    name = name or 'image'
    if len(data) == 0:
        raise ValueError(f'cannot read image {name}: the file is empty (0 bytes)')
    prefix = bytes(data[:16])
    for loader in (Image.preinit, Image.init):  # common formats first, then every plugin
        loader()
        for fmt in list(Image.ID):
            factory, accept = Image.OPEN[fmt]
            accepted = accept is None or accept(prefix)
            if not accepted or isinstance(accepted, str):  # a str: PIL's 'maybe' warning
                continue
            try:
                # the format's parser reads the header only; Image.open would add PIL's own
                # decompression-bomb limit, which we replace by ours
                image = factory(io.BytesIO(data), name)
            except (SyntaxError, IndexError, TypeError, ValueError, OSError, EOFError,
                    struct.error):
                continue
            width, height = image.size
            return int(width), int(height)
    raise ValueError(f'cannot read image {name}: not an image format that can be identified '
                     f'from its header ({len(data)} bytes, starting with {prefix[:8]!r})')


def check_pixels(width: int, height: int, name: str, max_pixels: Optional[int] = None) -> None:
    """Raise :class:`ImageTooLargeError` when ``width * height`` exceeds the limit.

    The message names ``name``, the image's size and the limit (and how to raise it).
    """
    limit = max_image_pixels(max_pixels)
    if width * height > limit:
        raise ImageTooLargeError(
            f'image {name} is {width}x{height} = {width * height} pixels, more than the limit of '
            f'{limit} pixels; refused before decoding. Raise the limit with max_pixels= (the '
            f'entry point or LoadImageFromFile in the pipeline) or ${ENV_VAR} if the image is '
            f'meant to be this large.')


def check_image_bytes(data: bytes, name: str, max_pixels: Optional[int] = None
                      ) -> Tuple[int, int]:
    """Read the header of the encoded image ``data`` and check its size against the limit.

    Returns:
        ``(width, height)``.

    Raises:
        ValueError: empty or unidentifiable image (naming ``name``).
        ImageTooLargeError: over the limit.
    """
    width, height = image_header_size(data, name)
    check_pixels(width, height, name, max_pixels)
    return width, height


def check_image_file(path: str, max_pixels: Optional[int] = None) -> Tuple[int, int]:
    """:func:`check_image_bytes` on a local file: reads only its first 64 KB unless the header
    needs more.

    Raises:
        FileNotFoundError: ``path`` is not a file.
    """
    path = str(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f'image file {path} not found')
    with open(path, 'rb') as f:
        data = f.read(1 << 16)
        try:
            width, height = image_header_size(data, path)
        except ValueError:
            data += f.read()  # a header beyond 64 KB (e.g. a large EXIF block): whole file
            width, height = image_header_size(data, path)
    check_pixels(width, height, path, max_pixels)
    return width, height
