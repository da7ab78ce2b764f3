"""What the grader keeps of the kernel's messages: everything is counted, little is stored.

Every IOPub message is learner-controlled. Each one is charged against the cell's and the
notebook's output caps *before* nbclient sees it: its content (text, data, traceback), both
metadata dicts, its binary buffers and a fixed overhead per message, so a flood of tiny
messages is bounded too. Messages over the cap are dropped (the cell gets one truncation note).
Comm (widget) messages are counted and never stored: no widget state, no Output-widget mimic.

nbclient merges stream outputs by string concatenation and then runs a backtracking regex over
the merged text: quadratic on one long line (a 900 kB line with no newline takes minutes). Here
consecutive pieces of a stream are kept as a list of parts, joined once at the end of the cell,
and carriage returns are applied in one linear pass with nbclient's meaning.
"""

from __future__ import annotations

import re
from typing import Any

import zmq
from jupyter_client.asynchronous.client import AsyncKernelClient
from jupyter_client.manager import AsyncKernelManager
from jupyter_client.session import json_unpacker
from nbclient import NotebookClient
from nbformat import NotebookNode, from_dict
from nbformat.v4 import new_output
from traitlets import Integer

TRUNCATION_NOTE = "\n[mlgrade: output truncated, over {limit} bytes]\n"
MESSAGE_OVERHEAD = 512  # bytes charged per message on top of its payload (Python objects)
_ANSWER_TYPES = ("display_data", "execute_result")  # what a grader call's larger cap is for
# a MIME type as nbformat's schema has it (its ``application/json`` may hold any JSON value)
_MIME_KEY = re.compile(r"(?!application/json$)[a-zA-Z0-9]+/[a-zA-Z0-9\-\+\.]+")


def message_size(msg: dict[str, Any]) -> int:
    """Bytes a message costs: strings, buffers and containers of content and metadata.

    Iterative (a learner can nest metadata deeply) and allocation-free (no ``json.dumps``)."""
    size = MESSAGE_OVERHEAD
    stack: list[Any] = [msg.get("content"), msg.get("metadata"), msg.get("buffers")]
    while stack:
        item = stack.pop()
        if isinstance(item, (str, bytes, bytearray)):
            size += len(item)
        elif isinstance(item, memoryview):
            size += item.nbytes
        elif isinstance(item, dict):
            if isinstance(item.get(OVERSIZED), int):  # a frame left unparsed: its full size
                size += item[OVERSIZED]
                continue
            size += 16 * (len(item) + 1)
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            size += 8 * (len(item) + 1)
            stack.extend(item)
        else:
            size += 8
    return size


def _apply_carriage_returns(line: str) -> str:
    """nbclient's ``.*\\r(?=[^\\n])`` removal for one line: keep what follows the last carriage
    return that has something after it."""
    cut = line.rfind("\r", 0, len(line) - 1)
    return line if cut < 0 else line[cut + 1:]


def clean_stream_text(text: str) -> str:
    """Apply carriage returns the way nbclient's coalescing does, in linear time. (nbclient's
    backspace loop never runs: its condition is false on entry; backspaces stay, as there.)"""
    if "\r" not in text:
        return text
    return "\n".join(_apply_carriage_returns(line) for line in text.split("\n"))


# a JSON string, or an unterminated one running to the end: every '"' starts a match, so
# removing strings is one linear pass even on a malformed frame
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\\?\Z)', re.DOTALL)
MAX_MESSAGE_VALUES = 1_000_000  # JSON values (outside strings) in one message frame
_SMALL_FRAME = 1 << 16


def _structural(frame: bytes, start: int = 0, end: int | None = None) -> int:
    end = len(frame) if end is None else end
    return sum(frame.count(char, start, end) for char in (b"{", b"[", b","))


def values_outside_strings(frame: bytes, limit: int = MAX_MESSAGE_VALUES) -> int:
    """An upper bound on the JSON values a frame holds, not counting brackets and commas inside
    strings (a grader's answer is one long string full of them); each string counts as one.
    Stops once over ``limit``; no copy of the frame is made."""
    total, strings = _structural(frame) + 1, 0
    for match in _JSON_STRING.finditer(frame):
        strings += 1
        if strings > limit:
            return strings
        total -= _structural(frame, match.start(), match.end())
    return total + strings


def bounded_unpack(frame: bytes | str) -> Any:
    """jupyter_client's JSON unpacker, refusing a frame of more than ``MAX_MESSAGE_VALUES``
    values before building them: 10 MB of ``[{},{},...]`` would be 3 million dicts."""
    raw = frame.encode("utf-8", "replace") if isinstance(frame, str) else bytes(frame)
    if (len(raw) > _SMALL_FRAME and _structural(raw) > MAX_MESSAGE_VALUES  # cheap test first
            and values_outside_strings(raw) > MAX_MESSAGE_VALUES):
        raise ValueError(f"a kernel message holds more than {MAX_MESSAGE_VALUES} values")
    return json_unpacker(raw)


_ENAME = re.compile(rb'"ename":\s*"([^"\\]{1,200})"')
OVERSIZED = "__mlgrade_oversized__"  # what an unparsed frame becomes: {OVERSIZED: its bytes}
_STUB_SLACK = 1 << 20  # frames this much over the room left are not parsed


class FrameUnpacker:
    """The client session's unpacker: a frame bigger than what the running execution may still
    keep (``room``) is not parsed at all but stands in as ``{OVERSIZED: size}``, which the caps
    then drop; a kernel re-sending a huge frame costs the grader a length check, not a parse.
    Others go through :func:`bounded_unpack`."""

    def __init__(self) -> None:
        self.room: int | None = None  # None: no execution running yet, no limit

    def __call__(self, frame: bytes | str) -> Any:
        size = len(frame)
        if self.room is not None and size > self.room + _STUB_SLACK:
            # "status" keeps nbclient reading an oversized execute_reply (a raise with a huge
            # message: it carries the traceback too); the error's name, if any, is kept
            stub: dict[str, Any] = {OVERSIZED: size, "status": "error"}
            raw = frame.encode("utf-8", "replace") if isinstance(frame, str) else bytes(frame)
            found = _ENAME.search(raw)
            if found:
                stub["ename"] = found.group(1).decode("utf-8", "replace")
            return stub
        return bounded_unpack(frame)


class BoundedKernelManager(AsyncKernelManager):
    """A kernel manager whose clients refuse any single message frame over
    ``max_message_bytes`` (ZMQ drops the connection) or holding more than
    ``MAX_MESSAGE_VALUES`` JSON values: one huge message would otherwise be received whole,
    and parsed, before any cap could apply."""

    max_message_bytes = Integer(0, help="largest message frame accepted (0: no limit)")
    unpacker: FrameUnpacker | None = None  # set by the CappedClient that drives this kernel

    def client(self, **kwargs: Any) -> AsyncKernelClient:  # type: ignore[override]
        kc = super().client(**kwargs)
        if self.max_message_bytes > 0:  # sockets are made later, by start_channels
            kc.context.setsockopt(zmq.MAXMSGSIZE, int(self.max_message_bytes))
        kc.session.unpack = self.unpacker or bounded_unpack
        return kc


def _short_error(content: Any) -> NotebookNode:
    """A bounded stand-in for an error output too big to keep (its name and message start)."""
    content = content if isinstance(content, dict) else {}
    ename, evalue = content.get("ename"), content.get("evalue")
    return new_output("error", ename=ename[:200] if isinstance(ename, str) else "Error",
                      evalue=evalue[:500] if isinstance(evalue, str) else "", traceback=[])


def _plain_display(msg: dict[str, Any]) -> NotebookNode | None:
    """A ``display_data`` output of text-only MIME types, built without nbformat's schema
    validation (jsonschema: about 0.8 ms, as long as a small request); None for anything else,
    which nbclient builds and validates as usual. What the kernel sends is learner-controlled:
    this accepts only what that validation would."""
    if msg.get("msg_type") != "display_data":
        return None
    content = msg.get("content")
    if not isinstance(content, dict):
        return None
    data, metadata = content.get("data"), content.get("metadata")
    if not (isinstance(data, dict) and isinstance(metadata, dict) and data and all(
            isinstance(k, str) and isinstance(v, str) and _MIME_KEY.fullmatch(k)
            for k, v in data.items())):
        return None
    return from_dict({"output_type": "display_data", "data": data, "metadata": metadata})


class CappedClient(NotebookClient):
    """An nbclient that keeps at most ``cell_cap`` bytes per cell and ``total_cap`` overall,
    counting every message, with linear-time stream merging (see the module doc)."""

    def configure_caps(self, cell_cap: int, total_cap: int) -> None:
        self._cell_cap = cell_cap
        self._total_cap = total_cap
        self._used: dict[int, int] = {}
        self._total = 0
        self.truncated = False
        self.cap_override: int | None = None  # a grader call allows a larger answer
        # per outputs list and stream name: [the output node, its text parts]
        self._streams: dict[tuple[int, str], tuple[NotebookNode, list[str]]] = {}
        self._stream_outs: dict[int, list[NotebookNode]] = {}
        self.unpacker = FrameUnpacker()
        if isinstance(self.km, BoundedKernelManager):  # its client is made by setup_kernel
            self.km.unpacker = self.unpacker

    # -- caps ------------------------------------------------------------------------------
    def start_cell(self, cell_index: int) -> None:
        """A new execution at ``cell_index`` starts with nothing used (hidden calls share -1)."""
        self._used.pop(cell_index, None)
        self.unpacker.room = self._room(cell_index)

    def _room(self, cell_index: int) -> int:
        """Bytes the execution at ``cell_index`` may still keep, at the most."""
        room = max(self._cell_cap, self.cap_override or 0) - self._used.get(cell_index, 0)
        if cell_index >= 0:
            room = min(room, self._total_cap - self._total)
        return max(room, 0)

    def _admit(self, outs: list[NotebookNode], msg: dict[str, Any], cell_index: int) -> bool:
        size = message_size(msg)
        used = self._used.get(cell_index, 0)
        cap = self._cell_cap
        if self.cap_override and msg.get("msg_type") in _ANSWER_TYPES:
            cap = max(cap, self.cap_override)
        over_total = cell_index >= 0 and self._total + size > self._total_cap
        if used + size > cap or over_total:
            if used <= self._cell_cap:  # note the truncation once per cell
                limit = self._total_cap if over_total else cap
                outs.append(new_output("stream", name="stderr",
                                       text=TRUNCATION_NOTE.format(limit=limit)))
                self._used[cell_index] = max(used, self._cell_cap + 1)
            self.truncated = True
            self.unpacker.room = self._room(cell_index)
            if msg.get("msg_type") == "error":  # the cell still raised: keep a short record
                outs.append(_short_error(msg.get("content")))
            return False
        self._used[cell_index] = used + size
        if cell_index >= 0:
            self._total += size
        self.unpacker.room = self._room(cell_index)
        return True

    def process_message(self, msg: dict[str, Any], cell: NotebookNode,
                        cell_index: int) -> NotebookNode | None:
        msg_type = msg.get("msg_type", "")
        if msg_type in ("status", "execute_input"):
            return super().process_message(msg, cell, cell_index)
        if not self._admit(cell.outputs, msg, cell_index):
            return None
        if msg_type.startswith("comm"):
            return None  # counted above; widget state is never kept
        return super().process_message(msg, cell, cell_index)

    # -- streams ---------------------------------------------------------------------------
    def output(self, outs: list[NotebookNode], msg: dict[str, Any], display_id: str | None,
               cell_index: int) -> NotebookNode | None:
        answer = _plain_display(msg) if cell_index < 0 and display_id is None else None
        if answer is not None and not self.clear_before_next_output:
            outs.append(answer)  # a grader call's answer: nothing for nbclient's bookkeeping
            return answer
        if self.clear_before_next_output:  # super() is about to empty ``outs``
            self._forget(outs)
        content = msg.get("content") or {}
        name, text = content.get("name"), content.get("text")
        if msg.get("msg_type") == "stream" and isinstance(name, str) and isinstance(text, str) \
                and not self.clear_before_next_output:
            known = self._streams.get((id(outs), name))
            if known is not None:
                known[1].append(text)
                return known[0]
        out = super().output(outs, msg, display_id, cell_index)
        if out is not None and out.get("output_type") == "stream" and isinstance(name, str):
            self._streams[(id(outs), name)] = (out, [str(out.get("text", ""))])
            self._stream_outs[id(outs)] = outs
        return out

    def clear_output(self, outs: list[NotebookNode], msg: dict[str, Any],
                     cell_index: int) -> None:
        if not (msg.get("content") or {}).get("wait"):
            self._forget(outs)
        super().clear_output(outs, msg, cell_index)

    def _forget(self, outs: list[NotebookNode]) -> None:
        for key in [k for k in self._streams if k[0] == id(outs)]:
            del self._streams[key]

    def finish_streams(self) -> None:
        """Join each merged stream once, apply ``\\r``, and put stdout before a stderr
        that directly precedes it (nbclient's coalescing, in linear time)."""
        for node, parts in self._streams.values():
            node["text"] = clean_stream_text("".join(parts))
        for outs in self._stream_outs.values():
            for i, output in enumerate(outs):
                if (output.get("output_type") == "stream" and output.get("name") == "stderr"
                        and i + 1 < len(outs) and outs[i + 1].get("output_type") == "stream"
                        and outs[i + 1].get("name") == "stdout"):
                    outs.insert(i, outs.pop(i + 1))
        self._streams.clear()
        self._stream_outs.clear()
