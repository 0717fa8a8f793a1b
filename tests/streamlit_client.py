"""A browser tab without the browser: Streamlit's websocket protocol, spoken directly.

One `Tab` is one websocket session of a real `streamlit run` server, as a browser tab opens
it: it asks for script runs (opening a URL path, clicking a sidebar link, submitting a form,
clicking a button), reads back every message the server sends, fetches a download button's
deferred file the way the frontend does (a backend operation, then GET on the /media/ URL it
names), and fetches the rest of a lazily delivered table chunk by chunk. Nothing of the
portal's own code is used to read what was sent.
"""

from __future__ import annotations

import asyncio
import html
import io
import itertools
import re
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import pyarrow as pa
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.Element_pb2 import Element
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState
from websockets.asyncio.client import ClientConnection, connect

RUN_TIMEOUT_S = 150.0
DOWNLOAD_ATTEMPTS = 20  # see Tab.download: a 404 means the file was pruned, not refused
XML_TEXT = re.compile(r">([^<]+)<")  # the text between two tags
DONE = {ForwardMsg.FINISHED_SUCCESSFULLY, ForwardMsg.FINISHED_WITH_COMPILE_ERROR}


def arrow_text(data: bytes) -> str:
    """An Arrow IPC stream (a table as Streamlit sends it) as text: headers, then cells."""
    if not data:
        return ""
    table = pa.ipc.open_stream(data).read_all()
    cells = (str(value) for column in table.columns for value in column.to_pylist())
    return "\n".join(itertools.chain(table.column_names, cells))


def arrow_rows(data: bytes) -> int:
    return pa.ipc.open_stream(data).read_all().num_rows if data else 0


def proto_text(message: Message) -> Iterator[str]:
    """Every string a message carries, at any depth, with its Arrow tables as text."""
    for descriptor, value in message.ListFields():
        if descriptor.message_type is not None and descriptor.message_type.GetOptions().map_entry:
            for key, item in value.items():
                yield str(key)
                yield from proto_text(item) if isinstance(item, Message) else (str(item),)
            continue
        for item in value if descriptor.is_repeated else (value,):
            if descriptor.type == FieldDescriptor.TYPE_MESSAGE:
                yield from proto_text(item)
            elif descriptor.type == FieldDescriptor.TYPE_STRING:
                yield item
            elif descriptor.type == FieldDescriptor.TYPE_BYTES and (
                message.DESCRIPTOR.name == "ArrowData" and descriptor.name == "data"
            ):
                yield arrow_text(item)


def file_text(body: bytes) -> str:
    """A downloaded file as text: a CSV as it is; an XLSX (a zip) as the values of its
    sheets and its shared strings, one per line, without the XML around them."""
    if not body.startswith(b"PK\x03\x04"):
        return body.decode()
    book = zipfile.ZipFile(io.BytesIO(body))
    parts = [p for p in book.namelist() if p.startswith("xl/worksheets/")]
    parts += [p for p in book.namelist() if p == "xl/sharedStrings.xml"]
    values = (XML_TEXT.findall(book.read(part).decode()) for part in parts)
    return "\n".join(html.unescape(value) for value in itertools.chain.from_iterable(values))


@dataclass
class Run:
    """What the server sent for one request: one or more script runs (a st.rerun or
    st.switch_page starts another), each begun by a new_session message."""

    messages: list[ForwardMsg] = field(default_factory=list)
    finished: int | None = None

    @property
    def last(self) -> list[ForwardMsg]:
        """The messages of the last script run only (what the tab finally shows)."""
        starts = [i for i, m in enumerate(self.messages) if m.WhichOneof("type") == "new_session"]
        return self.messages[starts[-1] :] if starts else self.messages

    def elements(self, kind: str | None = None) -> list[Element]:
        """The last run's elements, in the order sent (optionally of one kind only)."""
        found = []
        for message in self.last:
            if message.WhichOneof("type") == "delta" and message.delta.HasField("new_element"):
                element = message.delta.new_element
                if kind is None or element.WhichOneof("type") == kind:
                    found.append(element)
        return found

    def headings(self, tag: str = "h1") -> list[str]:
        return [e.heading.body for e in self.elements("heading") if e.heading.tag == tag]

    def exceptions(self) -> list[str]:
        return [f"{e.exception.type}: {e.exception.message}" for e in self.elements("exception")]

    def menu(self) -> dict[str, str]:
        """The sidebar menu the last run registered: link title -> page script hash."""
        menus = [m.navigation for m in self.last if m.WhichOneof("type") == "navigation"]
        if not menus:
            return {}
        return {p.page_name: p.page_script_hash for p in menus[-1].app_pages if not p.is_hidden}

    def text(self) -> str:
        """Everything every run of this request sent, as text (a superset of the screen)."""
        return "\n".join(itertools.chain.from_iterable(proto_text(m) for m in self.messages))


class ProtocolError(RuntimeError):
    """The server answered in a way no browser would accept."""


class Tab:
    """One browser tab of the portal at `base` (http://127.0.0.1:<port>)."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.session_id = ""
        self.page_script_hash = ""  # the page shown; a widget's rerun stays on it
        self._socket: ClientConnection | None = None
        self._requests = itertools.count(1)

    async def __aenter__(self) -> Tab:
        url = self.base.replace("http", "ws", 1) + "/_stcore/stream"
        self._socket = await connect(url, subprotocols=["streamlit"], proxy=None, max_size=None,
                                     open_timeout=60, ping_interval=None)  # fmt: skip
        return self

    async def __aexit__(self, *exc) -> None:
        if self._socket is not None:
            await self._socket.close()

    async def _receive(self) -> ForwardMsg:
        message = ForwardMsg()
        message.ParseFromString(await asyncio.wait_for(self._socket.recv(), RUN_TIMEOUT_S))
        if message.WhichOneof("type") == "new_session":
            self.session_id = message.new_session.initialize.session_id or self.session_id
        if message.WhichOneof("type") == "navigation":  # the page this run shows
            self.page_script_hash = message.navigation.page_script_hash
        return message

    async def run(
        self,
        *,
        page_name: str = "",
        page_script_hash: str = "",
        widgets: Iterable[WidgetState] = (),
    ) -> Run:
        """Ask for a script run as the frontend does, and read until the last run finished.

        `page_name`: a URL path typed or taken from history; `page_script_hash`: a sidebar
        link; neither: a widget's rerun of the page shown."""
        request = BackMsg()
        state = request.rerun_script
        state.query_string = ""
        state.page_name = page_name
        state.page_script_hash = page_script_hash or ("" if page_name else self.page_script_hash)
        state.widget_states.widgets.extend(widgets)
        await self._socket.send(request.SerializeToString())
        run = Run()
        while run.finished not in DONE:
            message = await self._receive()
            run.messages.append(message)
            if message.WhichOneof("type") == "script_finished":
                run.finished = message.script_finished
        if run.finished == ForwardMsg.FINISHED_WITH_COMPILE_ERROR:
            raise ProtocolError("the script did not compile")
        return run

    async def _operation(self, request: BackMsg) -> ForwardMsg:
        request_id = request.backend_operation_request.request_id
        await self._socket.send(request.SerializeToString())
        while True:
            message = await self._receive()
            if (
                message.WhichOneof("type") == "backend_operation_response"
                and message.backend_operation_response.request_id == request_id
            ):
                reply = message.backend_operation_response
                if reply.error_msg:
                    raise ProtocolError(reply.error_msg)
                return message

    async def download(self, button: Element, attempts: int = DOWNLOAD_ATTEMPTS) -> bytes:
        """Click a download button's file: the server runs its deferred function, then the
        browser GETs the /media/ URL the server answers with.

        Streamlit keeps the file it built under no session, and any session's finished run
        may prune it (marked by one, deleted by the next): with many sessions busy, the GET
        can come too late and find 404, as a person would, who clicks again."""
        file_id = button.download_button.deferred_file_id
        if not file_id:
            # A static download button carries its URL; the portal builds files on click.
            raise ProtocolError(f"download button {button.download_button.label!r} not deferred")
        for _ in range(attempts - 1):
            try:
                return await self._fetch(file_id)
            except urllib.error.HTTPError as refused:
                if refused.code != 404:
                    raise
        return await self._fetch(file_id)

    async def _fetch(self, file_id: str) -> bytes:
        request = BackMsg()
        operation = request.backend_operation_request
        operation.request_id = f"file-{next(self._requests)}"
        operation.session_id = self.session_id
        operation.deferred_file.file_id = file_id
        reply = await self._operation(request)
        url = reply.backend_operation_response.deferred_file.url
        return await asyncio.to_thread(_get, self.base + url)

    async def table_rest(self, element: Element) -> str:
        """The rows of a lazily delivered dataframe beyond its first chunk, as text."""
        lazy = element.dataframe.lazy_data
        if not element.dataframe.HasField("lazy_data") or not lazy.HasField("row_count"):
            return ""
        parts, offset = [], arrow_rows(lazy.initial_chunk.data)
        while offset < lazy.row_count:
            request = BackMsg()
            operation = request.backend_operation_request
            operation.request_id = f"rows-{next(self._requests)}"
            operation.session_id = self.session_id
            operation.dataframe_chunk.source_id = lazy.source_id
            operation.dataframe_chunk.offset = offset
            operation.dataframe_chunk.limit = lazy.page_size or 1000
            reply = await self._operation(request)
            data = reply.backend_operation_response.dataframe_chunk.arrow_data.data
            if not arrow_rows(data):
                raise ProtocolError(f"no rows at {offset} of {lazy.row_count}")
            parts.append(arrow_text(data))
            offset += arrow_rows(data)
        return "\n".join(parts)


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=60) as reply:
        return reply.read()


def text_input(run: Run, label: str) -> Element:
    (found,) = [e for e in run.elements("text_input") if e.text_input.label == label]
    return found


def button(run: Run, label: str) -> Element:
    (found,) = [e for e in run.elements("button") if e.button.label == label]
    return found


def typed(element: Element, value: str) -> WidgetState:
    return WidgetState(id=element.text_input.id, string_value=value)


def clicked(widget_id: str) -> WidgetState:
    return WidgetState(id=widget_id, trigger_value=True)
