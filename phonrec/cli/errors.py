"""How every command answers a user's mistake: one line naming the file, key or value, no
traceback, a non-zero exit status.

A user error is anything the library raises for bad input: ``ValueError`` and its subclasses
(``ConfigError``, ``AudioError``, ``DataDirError``, ``LexiconError``, ``PhoneSetError``, ...),
``OSError`` (missing, unreadable or unwritable paths), a refused checkpoint, and OmegaConf's
errors (a missing ``???`` key, a bad interpolation). Anything else is a bug and keeps its
traceback. ``PHONREC_DEBUG=1`` (or Hydra's ``HYDRA_FULL_ERROR=1``) shows the traceback of user
errors too.

Example::

    @user_errors("phonrec-transcribe")
    def main(argv=None) -> None: ...
"""

from __future__ import annotations

import functools
import os
import pickle
import sys
from collections.abc import Callable
from typing import TypeVar

from omegaconf.errors import OmegaConfBaseException

USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, OSError, pickle.UnpicklingError, OmegaConfBaseException)
EXIT_USER_ERROR = 2

F = TypeVar("F", bound=Callable[..., object])


def debug_requested() -> bool:
    """Whether the user asked for full tracebacks (``PHONREC_DEBUG=1`` or ``HYDRA_FULL_ERROR=1``)."""
    return os.environ.get("PHONREC_DEBUG", "") not in ("", "0") or os.environ.get("HYDRA_FULL_ERROR") == "1"


def format_user_error(prog: str, error: BaseException) -> str:
    """``prog: error: message`` on one line (OmegaConf's multi-line messages keep their first line)."""
    message = str(error).strip() or type(error).__name__
    if isinstance(error, OmegaConfBaseException):
        message = message.splitlines()[0]
    return f"{prog}: error: {message}"


def user_errors(prog: str) -> Callable[[F], F]:
    """Decorate a command's entry point (or a Hydra task function): a user error prints
    :func:`format_user_error` to stderr and exits with status 2, unless :func:`debug_requested`.

    Raising ``SystemExit`` inside a Hydra task ends the program with that status: Hydra only
    catches ``Exception``.
    """

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except USER_ERRORS as e:
                if debug_requested():
                    raise
                print(format_user_error(prog, e), file=sys.stderr)
                print(f"{prog}: (PHONREC_DEBUG=1 shows the traceback)", file=sys.stderr)
                raise SystemExit(EXIT_USER_ERROR) from None

        return wrapper  # type: ignore[return-value]

    return decorate
