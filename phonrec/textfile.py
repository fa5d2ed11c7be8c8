"""UTF-8 text files read line by line, with decoding errors that name the file and line.

Every line-oriented reader (``wav.scp`` and the other data-directory files, ``phones.txt``,
``lexicon.txt``, TIMIT ``.PHN``) reads through :func:`read_lines`, so a file that is not UTF-8
text (a binary file, a Latin-1 lexicon) fails with ``path:line: not UTF-8 text ...`` instead
of a bare ``UnicodeDecodeError``.
"""

from __future__ import annotations

import io
from pathlib import Path


def read_lines(path: str | Path, *, error: type[ValueError] = ValueError) -> list[str]:
    """The lines of a UTF-8 text file, as ``open(path, encoding="utf-8")`` would yield them.

    Universal newlines (``\\n``, ``\\r\\n``, ``\\r``) end lines; each line keeps its newline.
    A leading UTF-8 byte-order mark is kept (as ``open`` would).

    Raises:
        error: (a ``ValueError`` subclass chosen by the caller) ``path:line: not UTF-8 text``
            naming the first undecodable byte and its line.
        OSError: the file cannot be opened (``FileNotFoundError`` names the path).
    """
    data = Path(path).read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise error(
            f"{path}:{line}: not UTF-8 text (byte 0x{data[e.start]:02x} at offset {e.start}: {e.reason})"
        ) from None
    return list(io.StringIO(text, newline=None))
