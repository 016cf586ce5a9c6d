"""Reading an input file safely: only a regular file, within size, line and row limits.

`orders import` and `apply` read through `open_input`; a FIFO, a device (/dev/zero)
or a socket is refused before anything is read, so a command can neither stall
nor grow without bound on its input.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path

from statusctl.domain.errors import InputError, shown


def display_path(path: Path) -> str:
    """A file as messages name it: as given, or quoted and cut when it is very long or holds
    control characters (a newline in a file name would split the one-line error)."""
    text = str(path)
    return text if len(text) <= 200 and text.isprintable() else shown(text, 100)


MAX_FILE_BYTES = 256 * 2**20
MAX_LINE_BYTES = 2**20  # a CSV or JSON Lines line; any line a row can fill is far shorter
MAX_ROWS = 1_000_000
LIMITS = (f"at most {MAX_FILE_BYTES // 2**20} MiB, {MAX_ROWS:,} rows and lines of {MAX_LINE_BYTES // 2**20} MiB; "
          "split a bigger file")
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)  # POSIX; elsewhere there are no FIFOs to block on
_LONE_CR = re.compile(rb"(?<=\r)(?!\n)")  # CSV ends a line at a CR alone too, as universal newlines do


class InputFile:
    """An input file being read within the limits above, line by line or whole.

    Only a regular file is read: a FIFO, a device (/dev/zero) or a socket could
    stall the command or never end, so `open_input` refuses them.
    """

    def __init__(self, path: Path, handle: io.BufferedReader) -> None:
        self.path = path
        self.source = display_path(path)
        self.handle = handle
        self.read_bytes = 0
        self._header: bytes | None = None

    def head(self) -> str:
        """The first bytes as text (for telling the format), without consuming them."""
        return self.handle.peek(4096)[:4096].decode("utf-8", "ignore").lstrip("\ufeff")

    def _took(self, size: int) -> None:
        self.read_bytes += size
        if self.read_bytes > MAX_FILE_BYTES:
            raise InputError(f"{self.source}: grew past {MAX_FILE_BYTES // 2**20} MiB while being read; files of "
                             f"{LIMITS}.")

    def lines(self, *, universal: bool) -> Iterator[str]:
        """The file's lines (ends kept), split at LF, and with `universal` at a lone CR too."""
        number = 0
        while raw := self.handle.readline(MAX_LINE_BYTES + 1):
            self._took(len(raw))
            if len(raw) > MAX_LINE_BYTES:
                raise InputError(f"{self.source}, line {number + 1}: is longer than {MAX_LINE_BYTES // 2**20} MiB; "
                                 f"files of {LIMITS}.")
            for part in _LONE_CR.split(raw) if universal and b"\r" in raw[:-2] else (raw,):
                if not part:
                    continue
                number += 1
                if number == 1:
                    part = part.removeprefix(b"\xef\xbb\xbf")
                    self._header = part
                try:
                    yield part.decode("utf-8")
                except UnicodeDecodeError:
                    raise self._undecodable(number, part) from None

    def text(self) -> str:
        """The whole file as UTF-8 text (BOM allowed); undecodable bytes name their line."""
        data = self.handle.read(MAX_FILE_BYTES + 1 - self.read_bytes)
        self._took(len(data))
        try:
            return data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = data.count(b"\n", 0, exc.start) + 1
            raise self._undecodable(line, None) from None

    def _undecodable(self, line: int, raw: bytes | None) -> InputError:
        field = _undecodable_field(self._header, raw) if raw is not None and line > 1 else None
        where = f", field {field!r}" if field else ""
        return InputError(f"{self.source}, line {line}{where}: bytes are not valid UTF-8 (save the file as UTF-8).")


@contextlib.contextmanager
def open_input(path: Path) -> Iterator[InputFile]:
    """Open an input file for reading, or say in one sentence why it cannot be."""
    source = display_path(path)
    try:
        fd = os.open(path, os.O_RDONLY | _NONBLOCK)  # a FIFO must not block the open
    except FileNotFoundError:
        raise InputError(f"{source}: no such file.") from None
    except IsADirectoryError:
        raise InputError(f"{source}: is a directory, not a file.") from None
    except OSError as exc:
        raise InputError(f"{source}: cannot be read ({exc.strerror}).") from None
    with open(fd, "rb") as handle:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise InputError(f"{source}: is a directory, not a file.")
        if not stat.S_ISREG(info.st_mode):
            kind = "a pipe" if stat.S_ISFIFO(info.st_mode) else "a socket" if stat.S_ISSOCK(info.st_mode) else "a device"
            raise InputError(f"{source}: is {kind}, not a regular file; save what it gives to a file and read that.")
        if info.st_size > MAX_FILE_BYTES:
            raise InputError(f"{source}: is larger than {MAX_FILE_BYTES // 2**20} MiB; files of {LIMITS}.")
        if _NONBLOCK:
            os.set_blocking(fd, True)
        yield InputFile(path, handle)


def _undecodable_field(header: bytes | None, raw: bytes) -> str | None:
    """For a CSV with a clean header: the column of a one-line row that holds undecodable bytes."""
    if header is None:
        return None
    try:
        names = next(csv.reader([header.decode("utf-8")]))
        values = next(csv.reader([raw.decode("utf-8", errors="surrogateescape")]))
    except (csv.Error, StopIteration, UnicodeDecodeError):
        return None
    if len(names) != len(values):
        return None
    for name, value in zip(names, values, strict=True):
        if any("\udc80" <= ch <= "\udcff" for ch in value):
            return name.strip().lower()
    return None
