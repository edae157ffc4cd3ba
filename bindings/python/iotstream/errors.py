"""Exceptions raised by iotstream.

Every failure of the core library arrives as a subclass of :class:`IotstreamError` chosen by
the core's error code (``iots_err_t``), carrying the core's own message, which names the
offending key, topic, plugin or row. Where a built-in exception fits too, the class also
derives from it, so ``except ValueError`` catches a refused configuration and
``except TimeoutError`` catches a timeout.

The codes and their names come from the core's error table (``_native.error_table()``): each
class below names only its core symbol (``code_name``) and gets its number from the table, so a
code is written once, in iotstream.h.
"""
from __future__ import annotations

from typing import Dict, Type

from . import _native

__all__ = [
    "IotstreamError", "InvalidArgumentError", "ConfigError", "KafkaError", "QueueFullError",
    "TimedOutError", "StateError", "NoMemoryError", "InternalError", "PluginError",
    "NotFoundError", "BufferTooSmallError", "HandlerError", "UnsupportedError", "error_from_code",
]

#: (code, name, description) of every core error code, e.g. (-2, "IOTS_ERR_CONFIG", "...").
CORE_ERRORS = [tuple(entry) for entry in _native.error_table()]
_CODE_OF_NAME: Dict[str, int] = {name: code for code, name, _ in CORE_ERRORS}


class IotstreamError(Exception):
    """Base class of every iotstream error.

    Attributes:
        code: the core's ``iots_err_t`` value (negative; see :data:`code_name`).
        message: the core's explanation.
    """

    code_name: str = "IOTS_ERR_INTERNAL"
    code: int = _CODE_OF_NAME[code_name]

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if "code_name" in cls.__dict__:
            if cls.code_name not in _CODE_OF_NAME:
                raise ImportError(f"iotstream.errors.{cls.__name__} names {cls.code_name}, which the loaded "
                                  f"libiotstream does not define")
            cls.code = _CODE_OF_NAME[cls.code_name]

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class InvalidArgumentError(IotstreamError, ValueError):
    """An argument was missing, out of range or malformed."""
    code_name = "IOTS_ERR_INVALID_ARG"


class ConfigError(IotstreamError, ValueError):
    """A configuration was refused; the message names the key."""
    code_name = "IOTS_ERR_CONFIG"


class KafkaError(IotstreamError):
    """librdkafka or the broker reported an error; its text is the message."""
    code_name = "IOTS_ERR_KAFKA"


class QueueFullError(IotstreamError, BufferError):
    """The producer queue stayed full for the whole queue_full_timeout_ms."""
    code_name = "IOTS_ERR_QUEUE_FULL"


class TimedOutError(IotstreamError, TimeoutError):
    """The operation did not finish within its timeout."""
    code_name = "IOTS_ERR_TIMED_OUT"


class StateError(IotstreamError, RuntimeError):
    """Not allowed in the object's current state, e.g. used after close()."""
    code_name = "IOTS_ERR_STATE"


class NoMemoryError(IotstreamError, MemoryError):
    """An allocation failed inside the library."""
    code_name = "IOTS_ERR_NO_MEMORY"


class InternalError(IotstreamError):
    """An unexpected failure inside the library: a bug worth reporting."""
    code_name = "IOTS_ERR_INTERNAL"


class PluginError(IotstreamError):
    """A plugin was rejected or failed; the message names it."""
    code_name = "IOTS_ERR_PLUGIN"


class NotFoundError(IotstreamError, LookupError):
    """The named thing does not exist."""
    code_name = "IOTS_ERR_NOT_FOUND"


class BufferTooSmallError(IotstreamError):
    """A result did not fit its buffer; the bindings retry, so seeing it is a bug."""
    code_name = "IOTS_ERR_BUFFER_TOO_SMALL"


class HandlerError(IotstreamError):
    """A batch handler reported failure."""
    code_name = "IOTS_ERR_HANDLER"


class UnsupportedError(IotstreamError):
    """The ABI version asked for is not served by the loaded library."""
    code_name = "IOTS_ERR_UNSUPPORTED"


_BY_CODE: Dict[int, Type[IotstreamError]] = {cls.code: cls for cls in IotstreamError.__subclasses__()}

# Each class's docstring ends with its core symbol, number and the core's description.
for _code, _name, _description in CORE_ERRORS:
    if _code in _BY_CODE:
        _BY_CODE[_code].__doc__ = f"{_BY_CODE[_code].__doc__} ({_name} = {_code}: {_description})"


def error_from_code(code: int, message: str) -> IotstreamError:
    """The exception for a core error code (a code without its own class gives a plain IotstreamError)."""
    cls = _BY_CODE.get(code, IotstreamError)
    return cls(message, code)
