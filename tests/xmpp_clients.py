"""A small synchronous XMPP client for tests: slixmpp in a thread with its own event loop."""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from pathlib import Path

from slixmpp import JID, ClientXMPP
from slixmpp.exceptions import IqError, IqTimeout


class XmppClient:
    """One logged-in account; every method blocks until done (or its timeout)."""

    def __init__(self, jid: str, password: str, server: tuple[str, int], ca_file: str):
        self.jid, self.password, self.server, self.ca_file = jid, password, server, ca_file
        self.messages: queue.Queue = queue.Queue()
        self.errors: list[dict] = []  # stanza errors received: kind, from, condition, text
        self.presences: list[tuple[str, str]] = []  # (from, type)
        self.disconnects = 0
        self._started = threading.Event()
        self._failed: str | None = None
        self._session = False
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True,
                                        name=f"xmpp-client-{jid}")
        self._thread.start()
        self.xmpp: ClientXMPP = self._run(self._make())

    # -- plumbing

    def _run(self, coro, timeout: float = 15):
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    async def _make(self) -> ClientXMPP:
        xmpp = ClientXMPP(self.jid, self.password, loop=self._loop)
        xmpp.register_plugin("xep_0199")
        xmpp.enable_direct_tls = False
        xmpp.enable_plaintext = False
        xmpp.ca_certs = Path(self.ca_file)
        xmpp.auto_authorize = True
        xmpp.auto_subscribe = True
        xmpp.add_event_handler("session_start", self._on_start)
        xmpp.add_event_handler("failed_all_auth", lambda _e: self._fail("authentication failed"))
        xmpp.add_event_handler("connection_failed", lambda e: self._fail(f"connection: {e}"))
        xmpp.add_event_handler("disconnected", self._on_disconnected)
        xmpp.add_event_handler("message", self._on_message)
        xmpp.add_event_handler("message_error", lambda m: self._on_error("message", m))
        xmpp.add_event_handler("presence_error", lambda p: self._on_error("presence", p))
        xmpp.add_event_handler("presence", self._on_presence)
        return xmpp

    async def _on_start(self, _event) -> None:
        self.xmpp.send_presence()
        await self.xmpp.get_roster()
        self._session = True
        self._started.set()

    def _fail(self, why: str) -> None:
        self._failed = why
        self._started.set()

    def _on_disconnected(self, _reason) -> None:
        self._session = False
        self.disconnects += 1

    def _on_message(self, msg) -> None:
        if msg["type"] != "error" and msg["body"]:
            self.messages.put((str(msg["from"].bare), msg["body"]))

    def _on_error(self, kind: str, stanza) -> None:
        error = stanza["error"]
        self.errors.append({"kind": kind, "from": str(stanza["from"]),
                            "condition": error["condition"], "type": error["type"],
                            "text": error["text"]})

    def _on_presence(self, presence) -> None:
        self.presences.append((str(presence["from"]), presence["type"]))

    # -- API

    def connect(self, timeout: float = 15) -> XmppClient:
        """Connect and log in (STARTTLS, the test CA); raise if that fails."""
        self._loop.call_soon_threadsafe(self.xmpp.connect, *self.server)
        if not self._started.wait(timeout) or self._failed:
            raise RuntimeError(f"{self.jid} could not log in: {self._failed or 'timeout'}")
        return self

    @property
    def connected(self) -> bool:
        """Whether the session is up (logged in, not disconnected since)."""
        return self._session and self.xmpp.transport is not None

    def send_message(self, to: str, body: str) -> None:
        """Send a chat message."""
        self._loop.call_soon_threadsafe(
            lambda: self.xmpp.send_message(mto=to, mbody=body, mtype="chat"))

    def wait_message(self, timeout: float = 10) -> tuple[str, str] | None:
        """The next (from bare JID, body) received, or None after `timeout`."""
        try:
            return self.messages.get(timeout=timeout)
        except queue.Empty:
            return None

    def wait_error(self, timeout: float = 10, since: int = 0) -> dict | None:
        """The first stanza error received after the first `since` ones, or None."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.errors) > since:
                return self.errors[since]
            time.sleep(0.01)
        return None

    def subscribe(self, jid: str) -> None:
        """Ask for a presence subscription to `jid` (the peer auto-authorizes)."""
        self._loop.call_soon_threadsafe(
            lambda: self.xmpp.send_presence(pto=jid, ptype="subscribe"))

    def roster(self) -> dict:
        """The roster as the server sends it now: {jid: (name, subscription, groups)},
        without the client's own address."""
        async def get() -> dict:
            await self.xmpp.get_roster()
            r = self.xmpp.client_roster
            return {str(j): (r[j]["name"], r[j]["subscription"], sorted(r[j]["groups"]))
                    for j in r if str(j) != self.jid}
        return self._run(get())

    def subscription(self, jid: str) -> str:
        """The roster subscription state with `jid`: none, to, from or both."""
        async def get() -> str:
            roster = self.xmpp.client_roster
            return roster[JID(jid)]["subscription"] if JID(jid) in roster else "none"
        return self._run(get())

    def wait_subscription(self, jid: str, state: str = "both", timeout: float = 10) -> bool:
        """Wait until the roster says `state` for `jid`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.subscription(jid) == state:
                return True
            time.sleep(0.05)
        return False

    def wait_presence(self, jid: str, timeout: float = 10) -> bool:
        """Wait until an available presence from `jid` (bare or full) arrives."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(JID(f).bare == JID(jid).bare and t == "available"
                   for f, t in list(self.presences)):
                return True
            time.sleep(0.05)
        return False

    def ping(self, jid: str, timeout: float = 10) -> str | None:
        """XEP-0199 ping: None on a result, else the error condition (or "timeout")."""
        async def ping() -> str | None:
            try:
                await self.xmpp.plugin["xep_0199"].ping(JID(jid), timeout=timeout)
            except IqError as exc:
                return exc.iq["error"]["condition"]
            except IqTimeout:
                return "timeout"
            return None
        return self._run(ping(), timeout + 5)

    def disconnect(self) -> None:
        """Log out, stop the loop and its thread."""
        if self._loop.is_closed():
            return
        try:
            self._run(self._disconnect(), 10)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop.close()

    async def _disconnect(self) -> None:
        self.xmpp.cancel_connection_attempt()
        if self.xmpp.transport is not None:
            try:
                await asyncio.wait_for(self.xmpp.disconnect(wait=1), 3)
            except (TimeoutError, asyncio.CancelledError):
                pass
            self.xmpp.abort()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def __enter__(self) -> XmppClient:
        return self.connect()

    def __exit__(self, *_exc) -> None:
        self.disconnect()
