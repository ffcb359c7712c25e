"""The federation Test action: an XMPP ping through the service to a remote domain."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from pathlib import Path

log = logging.getLogger(__name__)


_LOCAL_CONDITIONS = {"not-allowed", "remote-server-not-found", "remote-server-timeout"}


def classify_error(condition: str, text: str, by_us: bool = True) -> tuple[str, str]:
    """(kind, message) for a stanza error the service returned to a ping of a remote domain."""
    text = text or ""
    lowered = text.lower()
    if condition == "not-allowed":
        if by_us:
            return "policy", text or "Federation with this domain is refused by our policy"
        return "remote_policy", text or "The remote server refuses federation with us"
    if condition in ("remote-server-not-found", "remote-server-timeout"):
        if "certificate" in lowered:
            return "certificate", text
        if "policy-violation" in lowered or "not allowed" in lowered:
            return "remote_policy", text
        if condition == "remote-server-timeout" and not text:
            return "timeout", "The remote server did not answer in time"
        if condition == "remote-server-timeout" and "timeout" in lowered:
            return "timeout", text
        return "not_found", text or "The remote server could not be reached"
    return "other", f"{condition}: {text}" if text else condition


def probe(jid: str, password: str, server: tuple[str, int], remote_domain: str,
          ca_file: str | None, timeout: float = 10) -> dict:
    """Log in to the XMPP service as `jid` and ping `remote_domain` (XEP-0199).

    Returns {"ok": True, "ms": float} or {"ok": False, "reason": kind, "message": text},
    kind one of: policy, remote_policy, certificate, not_found, timeout, login, service,
    other. Runs slixmpp in a thread of its own; returns within about timeout + 3 seconds.
    """
    result: dict = {}

    def run() -> None:
        loop = asyncio.new_event_loop()
        try:
            asyncio.set_event_loop(loop)
            result.update(loop.run_until_complete(asyncio.wait_for(
                _probe(jid, password, server, remote_domain, ca_file, timeout), timeout + 2)))
        except TimeoutError:
            result.update(ok=False, reason="timeout", message="No answer in time")
        except Exception as exc:  # noqa: BLE001 - a Test action reports, never raises
            log.exception("XMPP probe failed")
            result.update(ok=False, reason="other", message=str(exc) or type(exc).__name__)
        finally:
            _close_loop(loop)

    thread = threading.Thread(target=run, name="xmpp-probe", daemon=True)
    thread.start()
    thread.join(timeout + 3)
    if thread.is_alive() or not result:
        return {"ok": False, "reason": "timeout", "message": "No answer in time"}
    return result


def _close_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel what is left on `loop` and close it."""
    try:
        tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            loop.run_until_complete(asyncio.wait(tasks, timeout=2))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.run_until_complete(loop.shutdown_default_executor())
    finally:
        asyncio.set_event_loop(None)
        loop.close()


async def _probe(jid: str, password: str, server: tuple[str, int], remote_domain: str,
                 ca_file: str | None, timeout: float) -> dict:
    from slixmpp import JID, ClientXMPP
    from slixmpp.exceptions import IqError, IqTimeout

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    client = ClientXMPP(jid, password, loop=loop)
    client.register_plugin("xep_0199")
    client.enable_direct_tls = False
    client.enable_plaintext = False
    client.reconnect_max_attempts = 0
    if ca_file:
        client.ca_certs = Path(ca_file)
    login: asyncio.Future = loop.create_future()

    def done(value) -> None:
        if not login.done():
            login.set_result(value)

    client.add_event_handler("session_start", lambda _e: done(None))
    client.add_event_handler("failed_all_auth", lambda _e: done(
        ("login", f"The service account {jid} could not log in (wrong password?)")))
    client.add_event_handler("connection_failed", lambda e: done(
        ("service", f"Cannot connect to the XMPP service at {server[0]}:{server[1]}: {e}")))
    client.add_event_handler("ssl_invalid_chain", lambda e: done(
        ("service", f"The XMPP service's certificate is not trusted: {e}")))
    client.add_event_handler("disconnected", lambda e: done(
        ("service", f"The XMPP service's certificate is not trusted: {e}")
        if "CERTIFICATE_VERIFY_FAILED" in str(e) else
        ("service", f"The XMPP service closed the connection{f': {e}' if e else ''}")))
    try:
        client.connect(server[0], server[1])
        try:
            failure = await asyncio.wait_for(login, max(deadline - loop.time(), 0.1))
        except TimeoutError:
            return {"ok": False, "reason": "login",
                    "message": f"The service account {jid} could not log in in time"}
        if failure:
            return {"ok": False, "reason": failure[0], "message": failure[1]}
        start = time.monotonic()
        try:
            await client.plugin["xep_0199"].ping(
                JID(remote_domain), timeout=max(deadline - loop.time(), 0.1))
        except IqTimeout:
            return {"ok": False, "reason": "timeout",
                    "message": f"{remote_domain} did not answer within {timeout:g} s"}
        except IqError as exc:
            error = exc.iq["error"]
            condition, text = error["condition"], error["text"]
            by = error.xml.get("by")
            if condition not in _LOCAL_CONDITIONS and (not by or by == remote_domain):
                # The remote server answered (e.g. service-unavailable): it is reachable.
                return {"ok": True, "ms": round((time.monotonic() - start) * 1000, 1),
                        "note": f"{remote_domain} answered with {condition}"}
            kind, message = classify_error(condition, text, by_us=by != remote_domain)
            return {"ok": False, "reason": kind, "message": message, "condition": condition}
        return {"ok": True, "ms": round((time.monotonic() - start) * 1000, 1)}
    finally:
        client.cancel_connection_attempt()
        try:
            await asyncio.wait_for(client.disconnect(wait=1, ignore_send_queue=True), 2)
        except (TimeoutError, asyncio.CancelledError):
            pass
        client.abort()
