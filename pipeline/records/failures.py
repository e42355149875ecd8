"""A failed run explained: the root cause of a (Ray-wrapped) error, and advice that fits it."""
from __future__ import annotations

import re
from dataclasses import dataclass

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_RAISED = re.compile(r"^(?:[\w.]+\.)?(\w+(?:Error|Exception|Exit|Interrupt)): (.+)$")
# Ray/system faults a rerun can get past (a node, worker or object lost; memory; time-outs)
_TRANSIENT = {"OutOfMemoryError", "ObjectLostError", "ObjectFetchTimedOutError", "OwnerDiedError",
              "NodeDiedError", "WorkerCrashedError", "LocalRayletDiedError", "ActorUnavailableError",
              "ObjectStoreFullError", "OutOfDiskError", "GetTimeoutError", "RaySystemError",
              "ExecutionTimeoutError", "ConnectionError", "TimeoutError", "BrokenPipeError",
              "ObjectReconstructionFailedError", "RpcError"}
# errors of configuration, input or code: a rerun fails the same way
_PERMANENT = {"ValueError", "FileNotFoundError", "KeyError", "TypeError", "ImportError",
              "ModuleNotFoundError", "AttributeError", "NotADirectoryError", "IsADirectoryError",
              "PermissionError", "JSONDecodeError", "NotImplementedError", "IndexError",
              "PreflightError", "PubmedParseError", "AssertionError", "StallError"}


class RunFailed(RuntimeError):
    """A run that started but failed: root cause, advice, where the full traceback is."""

    def __init__(self, summary: str, advice: str, log_path: str | None, manifest: dict,
                 details: str | None = None) -> None:
        super().__init__(summary)
        self.summary, self.advice, self.log_path = summary, advice, log_path
        self.manifest, self.details = manifest, details


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run; the manifest says `interrupted`."""

    def __init__(self, manifest: dict) -> None:
        super().__init__("interrupted")
        self.manifest = manifest


@dataclass(frozen=True)
class Failure:
    """What went wrong, in one line, and what to do about it."""

    kind: str  # exception class name of the root cause
    message: str  # its message, first line, no colour codes
    transient: bool

    @property
    def summary(self) -> str:
        """`Kind: message`."""
        return f"{self.kind}: {self.message}" if self.message else self.kind

    def advice(self, resumable: bool = True) -> str:
        """What the user should do next."""
        if self.transient and resumable:
            return "committed work is kept: run the same command again to resume"
        if self.kind in _PERMANENT:
            return "fix the cause above, then run again (work committed so far is kept)"
        return ("this may be a bug or a fault of the cluster; if it is a passing fault, run the same "
                "command again to resume")


_WRAPPERS = {"RayTaskError", "ActorDiedError", "RayActorError", "UserCodeException",
             "RayDataUserCodeException", "SystemException", "RaySystemError"}


def _is_wrapper(exc: BaseException) -> bool:
    name = type(exc).__name__
    return name in _WRAPPERS or name.startswith("RayTaskError(")


def explain(exc: BaseException) -> Failure:
    """The root cause of `exc` through Ray's wrappers (task errors, actors dead in __init__,
    Ray Data's `raise ... from SystemException()`)."""
    chain = error_chain(exc)
    for cause in reversed(chain):  # the deepest real error wins
        if not _is_wrapper(cause) and str(cause).strip():
            return _failure(type(cause).__name__, _first_line(str(cause)), cause)
    for cause in chain:  # else the error named in a wrapper's rendered traceback
        found = _raised_in_text(_ANSI.sub("", str(cause)))
        if found:
            return _failure(found[0], found[1], None)
    if any(type(c).__name__ in ("ActorDiedError", "RayActorError") for c in chain):
        return Failure("ActorDiedError", _first_line(str(exc)), transient=True)  # a system fault
    return _failure(type(exc).__name__, _first_line(str(exc)), exc)


def _failure(kind: str, message: str, cause: BaseException | None) -> Failure:
    transient = kind in _TRANSIENT or kind == "RuntimeError" or (
        kind not in _PERMANENT and isinstance(cause, OSError))  # RuntimeError: unknown, try resuming
    return Failure(kind, message, transient)


def error_chain(exc: BaseException) -> list[BaseException]:
    """`exc` and what caused it: `.cause` (Ray task errors), `__cause__`, `__context__`, in order."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and all(current is not c for c in chain):
        chain.append(current)
        inner = getattr(current, "cause", None)
        current = (inner if isinstance(inner, BaseException) else None) or current.__cause__ or (
            None if current.__suppress_context__ else current.__context__)
    return chain


def root_cause(exc: BaseException) -> BaseException:
    """The last error of the chain (see error_chain)."""
    return error_chain(exc)[-1]


def _raised_in_text(text: str) -> tuple[str, str] | None:
    """The last `SomeError: message` line of a traceback rendered as text."""
    found = None
    for line in text.splitlines():
        m = _RAISED.match(line.strip())
        if m and m.group(1) not in ("RayTaskError", "ActorDiedError", "RayActorError"):
            found = (m.group(1), m.group(2).strip())
    return found


def _first_line(text: str) -> str:
    text = _ANSI.sub("", text).strip()
    return text.splitlines()[0][:500] if text else ""
