"""Serve a learner's web app inside the sandbox and question it over real HTTP from here.

A grader that checks an API (month 6's FastAPI app) must not run a test client inside the
learner's kernel: the notebook had every chance to patch ``fastapi``, ``TestClient`` or
``httpx`` there, and anything computed in the kernel is the learner's claim. Instead:

1. grader code sent into the kernel builds the app (typically by calling the learner's
   factory) and starts ``uvicorn`` on a background thread, listening on a **unix socket in the
   job folder** at a name the grader drew (the kernel's network namespace has no TCP the grader
   can reach; a socket file in the shared folder works across it);
2. this process opens that name with ``O_PATH | O_NOFOLLOW`` and accepts only a socket owned
   by the job folder's owner (a link the notebook planted cannot send the grader elsewhere),
   then connects through ``/proc/self/fd/N``, i.e. to that very inode;
3. requests go out with ``httpx`` under a deadline, bodies are read up to a size cap without
   decompression, and the verdicts are computed by the grader on the status codes and JSON that
   came back: plain data, judged like any value a learner function returns.

Usage in a grader::

    with serve_app(nb, "app = ns['create_app'](model, version)", what="`create_app(...)`",
                   model=..., version="1.2.0") as api:
        reply = api.post("/predict", {"tenure_months": 12, ...})
        expect(reply.status == 200, "...")
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from mlgrade.bridge.client import LearnerFailure, Notebook, Ref
from mlgrade.bridge.codec import DecodeError, strict_json

MAX_BODY = 256 * 1024  # an API answer the graders judge is a few hundred bytes
START_WAIT_S = 15.0

# Runs in the kernel after the grader's own set-up code has bound ``app``. Its result (the
# server object, kept there) is only used to ask the server to stop; whether it serves, and
# what, is observed from this side.
_START = """
import threading as _mlgrade_threading, time as _mlgrade_time
import uvicorn as _mlgrade_uvicorn
_mlgrade_server = _mlgrade_uvicorn.Server(_mlgrade_uvicorn.Config(
    app, uds=_mlgrade_socket, log_config=None, log_level="critical", access_log=False,
    lifespan="off", loop="asyncio", http="h11", ws="none", timeout_keep_alive=30))
_mlgrade_thread = _mlgrade_threading.Thread(target=_mlgrade_server.run, name="mlgrade-http",
                                            daemon=True)
_mlgrade_thread.start()
_mlgrade_until = _mlgrade_time.monotonic() + _mlgrade_wait
while (not _mlgrade_server.started and _mlgrade_thread.is_alive()
       and _mlgrade_time.monotonic() < _mlgrade_until):
    _mlgrade_time.sleep(0.005)
result = _mlgrade_server
"""
_STOP = "server.should_exit = True"


@dataclass(frozen=True)
class Reply:
    """One HTTP answer of the learner's app: status code and JSON body (None if not JSON)."""

    status: int
    body: Any
    raw: bytes


def _socket_fd(job_dir: Path, name: str) -> int:
    """An ``O_PATH`` descriptor of the socket ``name`` in ``job_dir``; never follows a link."""
    dir_fd = os.open(job_dir, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | os.O_CLOEXEC)
    try:
        owner = os.fstat(dir_fd).st_uid
        try:
            fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
        except FileNotFoundError:
            raise LearnerFailure("the app did not start serving (no socket appeared): does the "
                                 "factory return a FastAPI app?") from None
    finally:
        os.close(dir_fd)
    st = os.fstat(fd)  # of the inode itself: a planted link shows up as a link here
    if not stat.S_ISSOCK(st.st_mode) or st.st_uid != owner:
        os.close(fd)
        raise LearnerFailure("the grader's socket in the job folder was replaced by something "
                             "else; leave the grader's files alone.")
    return fd


class ServedApp:
    """A learner's app served in the kernel; send it requests with :meth:`get`/:meth:`post`."""

    def __init__(self, nb: Notebook, socket_name: str, *, timeout: float, max_body: int) -> None:
        self._nb = nb
        self._timeout = timeout
        self._max_body = max_body
        self._stuck: str | None = None  # once the app hangs, later requests fail at once
        if hasattr(os, "O_PATH") and os.path.isdir("/proc/self/fd"):
            self._fd: int | None = _socket_fd(nb.job_dir, socket_name)
            uds = f"/proc/self/fd/{self._fd}"
        else:  # no O_PATH (macOS): check the name, then connect to it (a narrow race remains)
            self._fd = None
            path = nb.job_dir / socket_name
            try:
                mode = os.lstat(path).st_mode
            except FileNotFoundError:
                raise LearnerFailure("the app did not start serving (no socket appeared).") from None
            if not stat.S_ISSOCK(mode):
                raise LearnerFailure("the grader's socket in the job folder was replaced; leave "
                                     "the grader's files alone.")
            uds = str(path)
        self._client = httpx.Client(
            transport=httpx.HTTPTransport(uds=uds, retries=0), base_url="http://learner-app",
            timeout=httpx.Timeout(timeout), follow_redirects=False, trust_env=False,
            headers={"accept-encoding": "identity"})

    def get(self, path: str) -> Reply:
        """``GET path``."""
        return self.request("GET", path)

    def post(self, path: str, body: Any) -> Reply:
        """``POST path`` with ``body`` as JSON."""
        return self.request("POST", path, body)

    def request(self, method: str, path: str, body: Any = None) -> Reply:
        """Send one request; a timeout, a broken connection or an oversized answer is the
        learner's failure (their app hung, crashed or flooded)."""
        what = f"{method} {path}"
        if self._stuck is not None:  # do not wait a full timeout again for each request
            raise LearnerFailure(f"{what} was not sent: the app stopped answering at {self._stuck}.")
        deadline = time.monotonic() + self._timeout
        content = None if body is None else json.dumps(body, allow_nan=False).encode()
        headers = {} if content is None else {"content-type": "application/json"}
        try:
            with self._client.stream(method, path, content=content, headers=headers) as response:
                raw = bytearray()
                for chunk in response.iter_raw():
                    raw += chunk
                    if len(raw) > self._max_body:
                        raise LearnerFailure(f"the answer to {what} is larger than "
                                             f"{self._max_body // 1024} KiB.")
                    if time.monotonic() > deadline:
                        raise httpx.ReadTimeout("deadline")
                status, encoding = response.status_code, response.headers.get("content-encoding")
        except httpx.TimeoutException:
            self._stuck = what
            raise LearnerFailure(f"{what} got no complete answer within {self._timeout:.0f} s "
                                 "(the app hung or is far too slow).") from None
        except httpx.HTTPError as exc:
            raise LearnerFailure(f"{what} failed: the app closed the connection or answered "
                                 f"something that is not HTTP ({type(exc).__name__}).") from None
        data = bytes(raw)
        parsed: Any = None
        if encoding in (None, "identity"):
            try:  # strictly, as every learner answer: no NaN, no 10**400, bounded size and depth
                parsed = strict_json(data, self._max_body)
            except DecodeError:
                parsed = None
        return Reply(status, parsed, data)

    def close(self) -> None:
        """Close the connection; the server in the kernel is asked to stop by :func:`serve_app`."""
        self._client.close()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


@contextlib.contextmanager
def serve_app(nb: Notebook, code: str, *, what: str, timeout: float | None = None,
              max_body: int = MAX_BODY, **inputs: Any) -> Iterator[ServedApp]:
    """Serve the ASGI app that grader-written ``code`` binds to ``app`` in the kernel.

    ``code`` runs like :meth:`Notebook.eval_untrusted` (``ns`` is the learner's namespace,
    ``np`` NumPy, each keyword an input); the app is served on a unix socket in the job folder
    at an unpredictable name for the duration of the ``with`` block. A failure to build or
    serve the app (the learner's factory raised, returned no app) is a :class:`LearnerFailure`
    naming ``what``. Requests time out after ``timeout`` seconds (default: the call timeout).
    """
    name = f".mlgrade-http-{secrets.token_hex(8)}.sock"
    server = nb.eval_untrusted(code + "\n" + _START, what=what, keep=True,
                               _mlgrade_socket=str(nb.job_dir / name), _mlgrade_wait=START_WAIT_S,
                               timeout=START_WAIT_S + nb.call_timeout, **inputs)
    app: ServedApp | None = None
    try:
        app = ServedApp(nb, name, timeout=timeout or nb.call_timeout, max_body=max_body)
        yield app
    finally:
        if app is not None:
            app.close()
        if isinstance(server, Ref):
            with contextlib.suppress(LearnerFailure):  # the kernel may be gone: nothing to stop
                nb.eval_untrusted(_STOP, what="stopping the app", server=server)


__all__ = ["MAX_BODY", "Reply", "ServedApp", "serve_app"]
