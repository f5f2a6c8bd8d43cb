"""Download a file by http(s) so that the destination is either complete or absent.

``torch.hub.download_url_to_file`` reads until the server stops sending: a connection closed
early leaves a short file, renamed into the cache, and every later run fails on it until it is
deleted by hand. Here the bytes go to ``<dst>.<random>.partial`` beside the destination and are
renamed over it only when as many bytes arrived as ``Content-Length`` announced and, when the
file name carries a SHA-256 prefix (torch hub's convention, ``name-<8 to 64 hex digits>.ext``,
e.g. ``resnet18-f37072fd.pth``), the digest starts with it.
"""
import hashlib
import os
import os.path as osp
import re
import tempfile
import urllib.parse
import urllib.request
from typing import Optional

#: A SHA-256 prefix in a file name, as torch hub writes it (``name-<hex>.ext``), 8 digits or more.
HASH_IN_NAME = re.compile(r'-([a-f0-9]{8,64})\.')
_CHUNK = 1 << 20


def hash_prefix_of(url: str) -> Optional[str]:
    """The SHA-256 prefix the file name of ``url`` carries, else None."""
    name = osp.basename(urllib.parse.urlparse(url).path)
    match = HASH_IN_NAME.search(name)
    return match.group(1) if match else None


def download_atomic(url: str, dst: str, timeout: float = 60.0) -> None:
    """Download ``url`` to ``dst``, complete and checked, or leave ``dst`` untouched.

    Raises:
        OSError: the request failed, fewer bytes arrived than ``Content-Length`` announced, or
            the SHA-256 does not start with the prefix the file name carries; the message names
            the URL. No ``.partial`` file is left behind.
    """
    directory = osp.dirname(osp.abspath(dst))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f'.{osp.basename(dst)}.', suffix='.partial', dir=directory)
    try:
        digest = hashlib.sha256()
        received = 0
        request = urllib.request.Request(url, headers={'User-Agent': 'mmase'})
        with os.fdopen(fd, 'wb') as out, urllib.request.urlopen(request,
                                                                timeout=timeout) as response:
            announced = response.headers.get('Content-Length')
            while True:
                chunk = response.read(_CHUNK)
                if not chunk:
                    break
                out.write(chunk)
                digest.update(chunk)
                received += len(chunk)
            out.flush()
            os.fsync(out.fileno())
        if announced is not None and received != int(announced):
            raise OSError(f'incomplete download of {url}: {received} of the {announced} bytes '
                          f'announced arrived (connection closed early)')
        prefix = hash_prefix_of(url)
        if prefix and not digest.hexdigest().startswith(prefix):
            raise OSError(f'download of {url} is corrupt: its SHA-256 {digest.hexdigest()} does '
                          f'not start with {prefix}, the prefix its file name carries')
        os.replace(tmp, dst)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)
