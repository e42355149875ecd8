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
              "PreflightError", "PubmedParseError", "AssertionError"}


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


def explain(exc: BaseException) -> Failure:
    """The root cause of `exc` through Ray's wrappers (task errors, actors dead in __init__)."""
    cause = root_cause(exc)
    kind, message = type(cause).__name__, _first_line(str(cause))
    if kind in ("RayTaskError", "ActorDiedError", "RayActorError", "UserCodeException",
                "RayDataUserCodeException", "SystemException") or kind.startswith("RayTaskError("):
        found = _raised_in_text(_ANSI.sub("", str(cause)))
        if found:
            kind, message = found
        elif kind == "ActorDiedError":
            return Failure(kind, message, transient=True)  # died without an error: a system fault
    transient = kind in _TRANSIENT or (kind not in _PERMANENT and isinstance(cause, OSError))
    if kind == "RuntimeError":
        transient = True  # unknown kind of fault: resuming is the right first try
    return Failure(kind, message, transient)


def root_cause(exc: BaseException) -> BaseException:
    """Follow `.cause` (Ray task errors), `__cause__` and `__context__` to the first error raised."""
    seen: set[int] = set()
    current = exc
    while id(current) not in seen:
        seen.add(id(current))
        inner = getattr(current, "cause", None)
        nxt = inner if isinstance(inner, BaseException) else None
        nxt = nxt or current.__cause__ or (None if current.__suppress_context__ else current.__context__)
        if nxt is None:
            break
        current = nxt
    return current


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
