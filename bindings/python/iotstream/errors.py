"""Exceptions raised by iotstream.

Every failure of the core library arrives as a subclass of :class:`IotstreamError` chosen by
the core's error code (``iots_err_t``), carrying the core's own message, which names the
offending key, topic, plugin or row. Where a built-in exception fits too, the class also
derives from it, so ``except ValueError`` catches a refused configuration and
``except TimeoutError`` catches a timeout.
"""
from __future__ import annotations

from typing import Dict, Type

__all__ = [
    "IotstreamError", "InvalidArgumentError", "ConfigError", "KafkaError", "QueueFullError",
    "TimedOutError", "StateError", "NoMemoryError", "InternalError", "PluginError",
    "NotFoundError", "BufferTooSmallError", "HandlerError", "UnsupportedError", "error_from_code",
]


class IotstreamError(Exception):
    """Base class of every iotstream error.

    Attributes:
        code: the core's ``iots_err_t`` value (negative; see :data:`code_name`).
        message: the core's explanation.
    """

    code: int = -8
    code_name: str = "IOTS_ERR_INTERNAL"

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class InvalidArgumentError(IotstreamError, ValueError):
    """An argument was missing, out of range or malformed (IOTS_ERR_INVALID_ARG)."""
    code, code_name = -1, "IOTS_ERR_INVALID_ARG"


class ConfigError(IotstreamError, ValueError):
    """A configuration was refused; the message names the key (IOTS_ERR_CONFIG)."""
    code, code_name = -2, "IOTS_ERR_CONFIG"


class KafkaError(IotstreamError):
    """librdkafka or the broker reported an error; its text is the message (IOTS_ERR_KAFKA)."""
    code, code_name = -3, "IOTS_ERR_KAFKA"


class QueueFullError(IotstreamError, BufferError):
    """The producer queue stayed full for the whole queue_full_timeout_ms (IOTS_ERR_QUEUE_FULL)."""
    code, code_name = -4, "IOTS_ERR_QUEUE_FULL"


class TimedOutError(IotstreamError, TimeoutError):
    """The operation did not finish within its timeout (IOTS_ERR_TIMED_OUT)."""
    code, code_name = -5, "IOTS_ERR_TIMED_OUT"


class StateError(IotstreamError, RuntimeError):
    """Not allowed in the object's current state, e.g. used after close() (IOTS_ERR_STATE)."""
    code, code_name = -6, "IOTS_ERR_STATE"


class NoMemoryError(IotstreamError, MemoryError):
    """An allocation failed inside the library (IOTS_ERR_NO_MEMORY)."""
    code, code_name = -7, "IOTS_ERR_NO_MEMORY"


class InternalError(IotstreamError):
    """An unexpected failure inside the library: a bug worth reporting (IOTS_ERR_INTERNAL)."""
    code, code_name = -8, "IOTS_ERR_INTERNAL"


class PluginError(IotstreamError):
    """A plugin was rejected or failed; the message names it (IOTS_ERR_PLUGIN)."""
    code, code_name = -9, "IOTS_ERR_PLUGIN"


class NotFoundError(IotstreamError, LookupError):
    """The named thing does not exist (IOTS_ERR_NOT_FOUND)."""
    code, code_name = -10, "IOTS_ERR_NOT_FOUND"


class BufferTooSmallError(IotstreamError):
    """A result did not fit its buffer (IOTS_ERR_BUFFER_TOO_SMALL); the bindings retry, so seeing it is a bug."""
    code, code_name = -11, "IOTS_ERR_BUFFER_TOO_SMALL"


class HandlerError(IotstreamError):
    """A batch handler reported failure (IOTS_ERR_HANDLER)."""
    code, code_name = -12, "IOTS_ERR_HANDLER"


class UnsupportedError(IotstreamError):
    """The ABI version asked for is not served by the loaded library (IOTS_ERR_UNSUPPORTED)."""
    code, code_name = -13, "IOTS_ERR_UNSUPPORTED"


_BY_CODE: Dict[int, Type[IotstreamError]] = {
    cls.code: cls
    for cls in (InvalidArgumentError, ConfigError, KafkaError, QueueFullError, TimedOutError,
                StateError, NoMemoryError, InternalError, PluginError, NotFoundError,
                BufferTooSmallError, HandlerError, UnsupportedError)
}


def error_from_code(code: int, message: str) -> IotstreamError:
    """The exception for a core error code (unknown codes give a plain IotstreamError)."""
    cls = _BY_CODE.get(code, IotstreamError)
    return cls(message, code)
