"""Opening connections to a directory: failover, TLS, timeouts, bind. The ldap3 entry point.

Every ldap3 Connection dirsync uses is made by `open_connection` here, and every ldap3
exception is turned into a `dirsync.ldap.errors` exception by `translate` here, so the rest
of dirsync sees one vocabulary of failures.

Choices, and why:
* **Failover in order, done here, not by ldap3's ServerPool.** Each URL is tried in turn
  (connect, StartTLS, bind); the first that works is used. A ServerPool hides why each
  server failed, and with `active=True` retries forever. When all fail, the error lists
  every URL with its own reason. A refused bind stops the loop: the other servers hold the
  same account, and retrying could lock it.
* **TLS verification by the standard library.** ldap3 2.9 checks host names itself with
  `ssl.match_hostname`, deprecated since Python 3.7 and gone in 3.12. `_Tls` below wraps the
  socket with an `ssl.SSLContext` that verifies the chain against `ca_file` (or the system
  CAs) and the host name (IP addresses against IP SANs), on by default.
* **Timeouts**: connect_timeout per URL for TCP + TLS; operation_timeout for every answer
  (ldap3's receive timeout; it must be a whole number of seconds, see `_receive_timeout`).
* raise_exceptions=True, auto_referrals=False, auto_range=False (see ranges.py): anything
  unusual fails loudly. Result codes ldap3 still does not raise for (size and time limits,
  referrals) are checked in paging.py.
* No schema or root DSE read on connect (get_info=NONE): one round trip less per login.
* Passwords go to ldap3 and nowhere else: not into messages, logs or reprs.
* Raw messages (`send_raw`, `receive_raw`, `next_message_id`): wire.py writes its own
  search requests (requests.py) and reads the answers through `_Strategy`'s buffer, on the
  same socket and with the same message id counter as ldap3, so both can take turns on one
  connection. `ldap3_search_request` is ldap3's encoding of the same request: the reference
  in tests, and the way out for a filter requests.py does not parse.
"""

from __future__ import annotations

import contextlib
import logging
import math
import socket
import ssl
import warnings
from typing import Any, Iterator

# ldap3 2.9.1 imports pyasn1's tagMap and typeMap, which pyasn1 0.6 deprecates with a warning
# at import time. Nothing we can fix from here; silence exactly those two, only while
# importing, so that test runs with warnings-as-errors can import ldap3 at all.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=r"(tagMap|typeMap) is deprecated",
                            category=DeprecationWarning)
    from ldap3 import (
        ANONYMOUS,
        BASE,
        DEREF_ALWAYS,
        NONE,
        SIMPLE,
        SUBTREE,
        SYNC,
        Connection,
        Server,
        Tls,
    )
    from ldap3.core import exceptions as lx
    from ldap3.core.results import RESULT_CODES
    from ldap3.operation.search import search_operation
    from ldap3.protocol.convert import build_controls_list
    from ldap3.protocol.rfc2696 import paged_search_control
    from ldap3.protocol.rfc4511 import LDAPMessage, MessageID, ProtocolOp
    from ldap3.strategy.base import RESPONSE_COMPLETE, SESSION_TERMINATED_BY_SERVER
    from ldap3.strategy.sync import SyncStrategy
    from ldap3.utils.asn1 import decode_message_fast, encode
    from ldap3.utils.config import set_config_parameter

from dirsync.ldap import ber

from dirsync.ldap.config import DirectoryConfig, LdapUrl
from dirsync.ldap.errors import (
    ConnectionLost,
    DirectoryUnreachable,
    LdapError,
    OperationTimedOut,
    TlsFailure,
)
from dirsync.ldap.results import error_for_result

log = logging.getLogger(__name__)

# ldap3 keeps each entry's attributes in a case-insensitive dict by default, which costs
# ~10 % of a large read; paging.py lower-cases attribute names itself, and nothing else in
# the process uses ldap3 (it is imported here only), so plain dicts are safe.
set_config_parameter("CASE_INSENSITIVE_ATTRIBUTE_NAMES", False)
# ldap3 reads the socket 4 KiB at a time and re-copies what it has buffered each time; a
# group with 100,000 members arrives as one multi-megabyte message. 1 MiB reads cut the
# large benchmark's group read from 13.4 s to 9.1 s (bench/README.md, "LDAP full sync").
set_config_parameter("SOCKET_SIZE", 1 << 20)

# Messages that do not end an operation (RFC 4511 section 4.5.2: a search's entries and
# references; intermediate responses).
_NOT_FINAL = frozenset({"searchResEntry", "searchResRef", "intermediateResponse"})

# The rest of dirsync.ldap takes its ldap3 names from here, so the import above is the only one.
__all__ = [
    "BASE", "SIMPLE", "SUBTREE", "Connection", "lx",
    "open_connection", "service_connection", "bound", "close_quietly", "translate",
    "connected_url", "next_message_id", "send_raw", "receive_raw", "result_description",
    "ldap3_search_request",
]


class _Tls(Tls):  # type: ignore[misc]
    """ldap3's Tls with the handshake and its checks done by an ssl.SSLContext."""

    def __init__(self, ca_file: str | None, verify: bool) -> None:
        super().__init__(validate=ssl.CERT_REQUIRED if verify else ssl.CERT_NONE,
                         ca_certs_file=ca_file)
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca_file)
        if not verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        self.context = context

    def wrap_socket(self, connection: Any, do_handshake: bool = False) -> None:
        # ldap3 calls this for ldaps:// on open and for StartTLS after the extended
        # operation; it reads the wrapped socket back from connection.socket. The handshake
        # runs now, so a certificate problem surfaces here and not on the first search.
        connection.socket = self.context.wrap_socket(
            connection.socket, server_hostname=connection.server.host,
            do_handshake_on_connect=True,
        )


class _Strategy(SyncStrategy):  # type: ignore[misc]
    """ldap3's synchronous strategy with its receiving and entry decoding replaced.

    ldap3 2.9.1 re-slices its whole receive buffer after every message (quadratic in the
    messages per socket read) and decodes each entry with its general BER decoder plus a text
    copy of every value; a full read of a large directory spent most of its time there
    (bench/LDAP.md). Here the buffer is kept across reads and cut once per read, entries are
    read by `ber.search_entry` straight into the `raw_attributes` paging.py uses (attribute
    names already lower-cased), and every other message still goes through ldap3's decoder.
    Simple binds only: ldap3's SASL signing (DIGEST-MD5) lives in the receiving replaced here.
    Overrides `receiving` and `_get_response` of ldap3 2.9.1, hence the exact pin in
    setup.cfg and tests/test_ldap_connection.py checking the names still exist.
    """

    def __init__(self, ldap_connection: Any) -> None:
        super().__init__(ldap_connection)
        self._pending = bytearray()
        self._names: dict[bytes, str] = {}

    def receiving(self) -> list[bytes]:
        pending = self._pending
        while True:
            messages, used = ber.split_messages(pending)
            if messages:
                del pending[:used]
                return messages
            try:
                data = self.connection.socket.recv(self.socket_size)
            except (OSError, AttributeError) as exc:
                self.connection.last_error = f"error receiving data: {exc}"
                with contextlib.suppress(OSError, lx.LDAPExceptionError):
                    self.close()
                raise lx.communication_exception_factory(
                    lx.LDAPSocketReceiveError, type(exc)(str(exc)))(
                        self.connection.last_error) from exc
            if not data:
                pending.clear()
                return []
            pending += data

    def _get_response(self, message_id: int, timeout: Any) -> Any:
        responses: list[Any] = []
        while True:
            messages = self.receiving()
            if not messages:
                return SESSION_TERMINATED_BY_SERVER
            for message in messages:
                try:
                    entry = ber.search_entry(message, self._names)
                    if entry is not None:
                        got, dn, raw = entry
                        response: dict[str, Any] = {
                            "type": "searchResEntry", "dn": dn, "raw_attributes": raw}
                    else:
                        decoded = decode_message_fast(message)
                        got = int(decoded["messageID"])
                        response = self.decode_response_fast(decoded)
                except (ber.BerError, IndexError, ValueError) as exc:
                    self.connection.last_error = f"malformed message from the server: {exc}"
                    raise lx.LDAPSocketReceiveError(self.connection.last_error) from exc
                if got == 0 and response.get("responseName") == "1.3.6.1.4.1.1466.20036":
                    return SESSION_TERMINATED_BY_SERVER  # notice of disconnection
                if got != message_id:
                    self.connection.last_error = (f"answer to message {got} while waiting for "
                                                  f"{message_id}")
                    raise lx.LDAPSocketReceiveError(self.connection.last_error)
                responses.append(response)
                if response["type"] not in _NOT_FINAL:
                    responses.append(RESPONSE_COMPLETE)
                    return responses


def _receive_timeout(config: DirectoryConfig) -> int:
    # ldap3 sets SO_RCVTIMEO with struct.pack('LL', timeout, 0): a float raises there.
    return max(1, math.ceil(config.operation_timeout))


def _server(config: DirectoryConfig, url: LdapUrl) -> Server:
    tls = _Tls(config.ca_file, config.verify) if (url.tls or config.start_tls) else None
    return Server(url.host, port=url.port, use_ssl=url.tls, tls=tls, get_info=NONE,
                  connect_timeout=config.connect_timeout)


def _connection(config: DirectoryConfig, url: LdapUrl, user: str | None,
                password: str | None) -> Connection:
    conn = Connection(
        _server(config, url),
        user=user,
        password=password,
        authentication=SIMPLE if user else ANONYMOUS,
        client_strategy=SYNC,
        auto_bind=False,
        read_only=True,
        raise_exceptions=True,
        receive_timeout=_receive_timeout(config),
        auto_referrals=False,
        auto_range=False,
        # DNs and attribute names go to the server exactly as given (no client-side rewriting).
        check_names=False,
        # with auto_range=False, return_empty_attributes=True trips over ranged replies
        # (ldap3 issue #1055); we do not need empty lists for missing attributes anyway.
        return_empty_attributes=False,
    )
    # ldap3 picks its strategy class by name in Connection.__init__ and copies five of its
    # bound methods onto the connection there; swap both.
    strategy = conn.strategy = _Strategy(conn)
    conn.send, conn.open, conn.get_response = strategy.send, strategy.open, strategy.get_response
    conn.post_send_single_response = strategy.post_send_single_response
    conn.post_send_search = strategy.post_send_search
    return conn


def open_connection(
    config: DirectoryConfig,
    user: str | None = None,
    password: str | None = None,
    *,
    bind: bool = True,
    doing: str = "connecting",
) -> Connection:
    """A connection to the first URL that answers, TLS set up and (with `bind`) bound as
    `user`, or anonymously when `user` is None. The caller closes it (`close_quietly`).

    Raises DirectoryUnreachable or TlsFailure listing every URL tried, or the error of a bind
    that was refused (BindRejected, ...), which ends the failover at once.
    """
    failures: list[tuple[LdapUrl, LdapError]] = []
    for url in config.urls:
        conn = _connection(config, url, user, password)
        try:
            conn.open(read_server_info=False)
            if config.start_tls and not url.tls:
                _start_tls(conn, config, url, doing)
            if bind:
                conn.bind(read_server_info=False)
            if failures:
                log.warning("directory %r: using %s; %s", config.name, url,
                            "; ".join(f"{u}: {e.reason}" for u, e in failures))
            return conn
        except (lx.LDAPException, TlsFailure) as exc:
            close_quietly(conn)
            error = translate(exc, config, f"{doing} to {url}")
            if not isinstance(error, (DirectoryUnreachable, TlsFailure)):
                raise error from exc
            failures.append((url, error))
    only_tls = all(isinstance(e, TlsFailure) for _, e in failures)
    if len(failures) == 1:
        listing = failures[0][1].reason
    else:
        listing = " | ".join(f"({n}) {e.reason}" for n, (_, e) in enumerate(failures, 1))
    if only_tls:
        raise TlsFailure(config.name, listing if len(failures) == 1 else
                         f"TLS failed with every server: {listing}")
    raise DirectoryUnreachable(config.name, f"no server could be reached: {listing}; check "
                               "urls, the network and that the servers are running")


def _start_tls(conn: Connection, config: DirectoryConfig, url: LdapUrl, doing: str) -> None:
    try:
        conn.start_tls(read_server_info=False)
    except lx.LDAPOperationResult as exc:
        # The server refused the StartTLS request itself (no TLS configured, ...): that is a
        # TLS failure, not a reason to stop trying the other servers.
        raise TlsFailure(config.name, f"{doing} to {url}: the server refused StartTLS "
                         f"(LDAP result {exc.result} {exc.description}); configure TLS on the "
                         "server or use an ldaps:// URL") from exc


def service_connection(config: DirectoryConfig, doing: str = "connecting") -> Connection:
    """A connection bound as the configured bind DN (anonymous if there is none)."""
    return open_connection(config, config.bind_dn, config.bind_password, doing=doing)


@contextlib.contextmanager
def bound(config: DirectoryConfig, doing: str = "connecting") -> Iterator[Connection]:
    """`service_connection` as a context manager that closes it."""
    conn = service_connection(config, doing)
    try:
        yield conn
    finally:
        close_quietly(conn)


def connected_url(conn: Connection) -> str:
    """The URL of the server an open connection reached (after failover), as `LdapUrl` writes
    it: incremental sync tokens name the server their marks belong to."""
    server = conn.server
    scheme = "ldaps" if server.ssl else "ldap"
    return str(LdapUrl(scheme, server.host, int(server.port)))


def close_quietly(conn: Connection) -> None:
    """Unbind and close; a connection that is already broken is simply dropped."""
    try:
        conn.unbind()
    except Exception:  # noqa: BLE001 - closing must never hide the error being handled
        with contextlib.suppress(Exception):
            conn.strategy.close()
    # ldap3 leaves the socket of a connection that failed to connect open (its close()
    # skips connections it never marked open): close it ourselves.
    sock = getattr(conn, "socket", None)
    if sock is not None:
        with contextlib.suppress(Exception):
            sock.close()


def translate(exc: BaseException, config: DirectoryConfig, doing: str) -> LdapError:
    """The LdapError for an exception raised by ldap3 while `doing` something."""
    name = config.name
    if isinstance(exc, LdapError):
        return exc
    if isinstance(exc, lx.LDAPOperationResult):
        return error_for_result(name, int(exc.result or 0), exc.description or "",
                                exc.message or "", doing)
    if isinstance(exc, (ssl.SSLError, ssl.CertificateError, lx.LDAPStartTLSError,
                        lx.LDAPCertificateError, lx.LDAPSSLConfigurationError)):
        detail = _tls_detail(exc)
        return TlsFailure(name, f"{doing}: TLS failed: {detail}; check ca_file (the CA that "
                          "signed the server certificate) and that the URL's host name is in "
                          "the certificate")
    if isinstance(exc, lx.LDAPSocketOpenError):
        return DirectoryUnreachable(name, f"{doing}: cannot connect: {_socket_detail(exc)}")
    if isinstance(exc, (socket.timeout, lx.LDAPResponseTimeoutError)):
        return OperationTimedOut(name, f"{doing}: no answer within the operation timeout "
                                 f"({config.operation_timeout:g} s)")
    if isinstance(exc, lx.LDAPCommunicationError):
        return ConnectionLost(name, f"{doing}: the connection was lost: "
                              f"{_socket_detail(exc)}")
    if isinstance(exc, (lx.LDAPInvalidFilterError, lx.LDAPInvalidDnError)):
        return LdapError(name, f"{doing}: {exc}")
    return LdapError(name, f"{doing}: {type(exc).__name__}: {exc}")


def _tls_detail(exc: BaseException) -> str:
    # ldap3 re-raises the ssl error as text wrapped in its own words and tuples:
    # "('socket ssl wrapping error: [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify
    # failed: self-signed certificate in certificate chain (_ssl.c:1006)',)". Keep the part
    # after the OpenSSL code, which is the sentence a person can act on.
    text = str(exc).replace("\\'", "'")
    if "] " in text:
        text = text.split("] ", 1)[1]
    text = text.split(" (_ssl", 1)[0]
    return text.strip(" '\"(),.") or type(exc).__name__


def _socket_detail(exc: BaseException) -> str:
    # ldap3 prefixes its own words ("socket connection error while opening: ...") and may
    # carry a list of per-address failures; the last OS error is the useful part.
    args = getattr(exc, "args", ())
    if len(args) > 1 and isinstance(args[1], list) and args[1]:
        return "; ".join(str(err) for err, _ in args[1])
    text = str(exc)
    return text.split(": ", 1)[-1] if "error while opening" in text else text


# -- raw messages: for the searches dirsync writes itself (requests.py, pipeline.py) ----------


def next_message_id(conn: Connection) -> int:
    """A message id from the same counter ldap3 uses, so no two requests ever share one."""
    return int(conn.server.next_message_id())


def send_raw(conn: Connection, config: DirectoryConfig, doing: str, data: bytes) -> None:
    """Send encoded LDAP messages on the connection's socket (TLS included)."""
    try:
        if conn.closed or conn.socket is None:
            raise lx.LDAPSocketOpenError("unable to send message, socket is not open")
        conn.socket.sendall(data)
    except OSError as exc:
        with contextlib.suppress(Exception):
            conn.strategy.close()
        raise translate(lx.communication_exception_factory(lx.LDAPSocketSendError, type(exc)(
            str(exc)))(f"socket sending error: {exc}"), config, doing) from exc
    except lx.LDAPException as exc:
        raise translate(exc, config, doing) from exc


def receive_raw(conn: Connection, config: DirectoryConfig, doing: str) -> list[bytes]:
    """The next complete LDAP messages from the connection, through the strategy's own buffer
    (so ldap3's later reads continue where these end). A closed session raises ConnectionLost,
    a silent server OperationTimedOut or ConnectionLost as for any ldap3 read."""
    try:
        if conn.closed or conn.socket is None:
            raise lx.LDAPSocketOpenError("unable to receive, socket is not open")
        messages = conn.strategy.receiving()
        if not messages:
            with contextlib.suppress(Exception):
                conn.strategy.close()
            raise lx.LDAPSessionTerminatedByServerError("session terminated by server")
        return messages  # type: ignore[no-any-return]
    except lx.LDAPException as exc:
        raise translate(exc, config, doing) from exc


def result_description(code: int) -> str:
    """ldap3's name for a result code ("sizeLimitExceeded"), as its own results carry it."""
    return str(RESULT_CODES.get(code, ""))


def ldap3_search_request(message_id: int, base: str, subtree: bool, search_filter: str,
                         attributes: list[str], *, size_limit: int = 0,
                         paged: tuple[int, bytes] | None = None) -> bytes:
    """The bytes ldap3 itself sends for this search (conn.search with our settings): the way
    out for a configured filter requests.py does not parse, and its reference in tests."""
    request = search_operation(base, search_filter, SUBTREE if subtree else BASE, DEREF_ALWAYS,
                               attributes or ["1.1"], size_limit, 0, False, True, True,
                               None, validator=None, check_names=False)
    message = LDAPMessage()
    message["messageID"] = MessageID(message_id)
    message["protocolOp"] = ProtocolOp().setComponentByName("searchRequest", request)
    if paged is not None:
        message["controls"] = build_controls_list([paged_search_control(True, *paged)])
    return bytes(encode(message))
