"""Download from, or post to, a client-supplied URL without letting the client reach our own network.

The HTTP API creates a track from ``{"url": "https://…"}``; :func:`fetch_to_file` downloads it.
Webhook deliveries go out through :func:`post`, under the same guard.
A URL is attacker-controlled, so the fetch is guarded against server-side request forgery:

- only ``http`` and ``https``, no user name or password, at most 2048 characters;
- every host is resolved here and refused if any of its addresses is not globally routable
  (loopback, private, link-local and cloud metadata, CGNAT, multicast, reserved, unspecified, and
  IPv6 forms that embed such an IPv4 address); numeric hosts such as ``2130706433`` or
  ``0x7f.1`` are read the way the operating system reads them;
- the socket connects to the very address that was checked, never to the name again, so a DNS
  answer that changes between check and use (DNS rebinding) cannot slip through; TLS SNI,
  certificate checks and the ``Host`` header still use the name from the URL;
- at most 5 redirects, each one checked like the first URL;
- the size and the time of the whole download are bounded; proxy environment variables are
  ignored.

Callers pass the settings ``BEATFRAME_FETCH_ALLOWED_NETWORKS``, ``BEATFRAME_FETCH_MAX_BYTES`` and
``BEATFRAME_FETCH_TIMEOUT`` (the ``fetch_allowed_networks``, ``fetch_max_bytes`` and
``fetch_timeout`` fields of :class:`beatframe.infra.settings.Settings`)::

    s = get_settings()
    fetch_to_file(url, dest, max_bytes=s.fetch_max_bytes, timeout=s.fetch_timeout,
                  allowed_networks=s.fetch_allowed_networks)
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.message import Message
from pathlib import Path, PurePosixPath
from urllib.parse import quote, unquote, urljoin, urlsplit

import httpcore

from beatframe.infra.errors import BadInputError
from beatframe.infra.fsutil import atomic_path

MAX_URL_LENGTH = 2048
MAX_REDIRECTS = 5
MAX_CONNECT_TIMEOUT = 10.0

Resolver = Callable[[str, int], list[str]]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_DEFAULT_PORTS = {"http": 80, "https": 443}
# What inet_aton(3) reads as an IPv4 address: 1 to 4 decimal, octal or hex parts.
_NUMERIC_HOST = re.compile(r"(?:0x[0-9a-f]*|[0-9]+)(?:\.(?:0x[0-9a-f]*|[0-9]+)){0,3}\.?")
_HOST_NAME = re.compile(r"[a-z0-9_-]+(?:\.[a-z0-9_-]+)*\.?")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
# Not globally reachable although some Python versions' ``is_global`` says they are.
_NEVER_PUBLIC = tuple(
    ipaddress.ip_network(n)
    for n in ("100.64.0.0/10", "fec0::/10", "2001::/32", "64:ff9b:1::/48")
)


class FetchError(BadInputError):
    """A URL that cannot be fetched; ``code`` says why and ``http_status`` is for the API.

    Codes: ``url_invalid`` (not an http(s) URL of an accepted shape), ``url_forbidden`` (the
    host, after DNS or a redirect, is not a public address), ``file_too_large`` (HTTP 413) and
    ``url_fetch_failed`` (DNS failure, connection error, timeout, non-2xx answer, too many
    redirects). The message is one line and names the host at most, never the path or query.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.http_status = 413 if code == "file_too_large" else 400


@dataclass(frozen=True)
class FetchResult:
    """What :func:`fetch_to_file` wrote.

    Attributes
    ----------
    final_url : str
        The URL the body came from, after redirects.
    bytes : int
        Size of the file.
    sha256 : str
        Hex SHA-256 of the file.
    content_type : str or None
        The media type the server declared, without parameters, lower case.
    filename : str
        A safe base name (no path separators, no leading dot) from ``Content-Disposition`` or
        the final URL's path; ``"download"`` when neither gives one.
    """

    final_url: str
    bytes: int
    sha256: str
    content_type: str | None
    filename: str


@dataclass(frozen=True)
class _Target:
    host: str  # lower-case ASCII name, or an IP address in ipaddress' canonical form
    url: httpcore.URL
    authority: bytes  # the Host header


def fetch_to_file(
    url: str,
    dest: Path,
    *,
    max_bytes: int,
    timeout: float,
    allowed_networks: str = "",
    resolver: Resolver | None = None,
) -> FetchResult:
    """Download ``url`` to ``dest`` (atomically), refusing anything but public hosts.

    Parameters
    ----------
    url : str
        An ``http`` or ``https`` URL supplied by a client.
    dest : Path
        Where the body goes; written under a temporary name beside it and renamed on success,
        so a failure leaves nothing behind.
    max_bytes : int
        Largest body accepted (``BEATFRAME_FETCH_MAX_BYTES``).
    timeout : float
        Seconds for the whole download, redirects included (``BEATFRAME_FETCH_TIMEOUT``); a
        connection attempt gets at most 10 of them.
    allowed_networks : str
        Comma-separated CIDRs that may be reached although not public
        (``BEATFRAME_FETCH_ALLOWED_NETWORKS``).
    resolver : callable, optional
        ``resolver(host, port) -> list of IP strings``; ``socket.getaddrinfo`` by default.

    Returns
    -------
    FetchResult

    Raises
    ------
    FetchError
        With ``code`` ``url_invalid``, ``url_forbidden``, ``file_too_large`` or
        ``url_fetch_failed``.
    ValueError
        If ``allowed_networks`` is not a list of CIDRs (a configuration error).
    """
    backend = _GuardedBackend(_parse_networks(allowed_networks), resolver or _resolve)
    deadline = time.monotonic() + timeout
    with httpcore.ConnectionPool(network_backend=backend) as pool:
        for _ in range(MAX_REDIRECTS + 1):
            target = _parse_url(url)
            try:
                with _request(pool, target, deadline) as response:
                    location = _header(response, b"location")
                    if response.status in _REDIRECTS and location:
                        url = urljoin(url, location)
                        continue
                    if not 200 <= response.status < 300:
                        raise FetchError(
                            "url_fetch_failed", f"{target.host} answered HTTP {response.status}"
                        )
                    return _save(response, url, dest, max_bytes, deadline, target.host)
            except httpcore.TimeoutException:
                raise _timed_out(target.host) from None
            except (httpcore.NetworkError, httpcore.ProtocolError) as exc:
                raise FetchError(
                    "url_fetch_failed",
                    f"could not fetch from {target.host}: {str(exc) or type(exc).__name__}",
                ) from None
    raise FetchError("url_fetch_failed", f"more than {MAX_REDIRECTS} redirects")


def post(
    url: str,
    body: bytes,
    *,
    headers: dict[str, str],
    timeout: float,
    allowed_networks: str = "",
    resolver: Resolver | None = None,
) -> int:
    """POST ``body`` to a client-supplied ``url`` under the same guard; the response's status.

    Redirects are not followed (a webhook receiver answers where it was registered). Raises
    :class:`FetchError` as :func:`fetch_to_file` does; any HTTP status is returned, not raised.
    """
    backend = _GuardedBackend(_parse_networks(allowed_networks), resolver or _resolve)
    deadline = time.monotonic() + timeout
    target = _parse_url(url)
    extra = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
    with httpcore.ConnectionPool(network_backend=backend) as pool:
        try:
            with _request(pool, target, deadline, method="POST", body=body, extra=extra) as response:
                response.read()  # drain (bounded by the deadline); receivers answer briefly
                return response.status
        except httpcore.TimeoutException:
            raise _timed_out(target.host) from None
        except (httpcore.NetworkError, httpcore.ProtocolError) as exc:
            raise FetchError("url_fetch_failed",
                             f"could not reach {target.host}: {str(exc) or type(exc).__name__}") from None


def check_url(url: str) -> None:
    """Refuse a URL that could never be fetched (shape, scheme, credentials), before storing it."""
    _parse_url(url)


def _request(pool: httpcore.ConnectionPool, target: _Target, deadline: float, *, method: str = "GET",
             body: bytes | None = None, extra: list[tuple[bytes, bytes]] | None = None):
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise _timed_out(target.host)
    headers = [
        (b"Host", target.authority),
        (b"User-Agent", b"beatframe-fetch"),
        (b"Accept", b"*/*"),
        (b"Accept-Encoding", b"identity"),
        *(extra or []),
    ]
    timeouts = {
        "connect": min(MAX_CONNECT_TIMEOUT, remaining),
        "read": remaining,
        "write": remaining,
        "pool": remaining,
    }
    return pool.stream(method, target.url, headers=headers, content=body, extensions={"timeout": timeouts})


def _save(
    response: httpcore.Response, url: str, dest: Path, max_bytes: int, deadline: float, host: str
) -> FetchResult:
    too_large = FetchError("file_too_large", f"the file is larger than {max_bytes} bytes")
    length = _header(response, b"content-length")
    if length is not None and length.strip().isdigit() and int(length) > max_bytes:
        raise too_large
    digest = hashlib.sha256()
    size = 0
    with atomic_path(dest) as tmp, open(tmp, "wb") as out:
        for chunk in response.iter_stream():
            size += len(chunk)
            if size > max_bytes:
                raise too_large
            if time.monotonic() > deadline:
                raise _timed_out(host)
            digest.update(chunk)
            out.write(chunk)
    content_type = (_header(response, b"content-type") or "").split(";")[0].strip().lower()
    return FetchResult(url, size, digest.hexdigest(), content_type or None, _filename(response, url))


def _timed_out(host: str) -> FetchError:
    return FetchError("url_fetch_failed", f"fetching from {host} timed out")


def _header(response: httpcore.Response, name: bytes) -> str | None:
    for key, value in response.headers:
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def _filename(response: httpcore.Response, url: str) -> str:
    name = ""
    disposition = _header(response, b"content-disposition")
    if disposition:
        message = Message()
        message["content-disposition"] = disposition
        name = message.get_filename() or ""
    if not name:
        name = unquote(PurePosixPath(urlsplit(url).path).name)
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    return re.sub(r"[^\w.\- ]", "_", name).strip(" .")[:128] or "download"


def _parse_url(url: str) -> _Target:
    if len(url) > MAX_URL_LENGTH:
        raise FetchError("url_invalid", f"the URL is longer than {MAX_URL_LENGTH} characters")
    if any(c.isspace() or not c.isprintable() for c in url):
        raise FetchError("url_invalid", "the URL contains whitespace or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise FetchError("url_invalid", "the URL is malformed") from None
    if parts.scheme not in _DEFAULT_PORTS:
        raise FetchError("url_invalid", "the URL must start with http:// or https://")
    if "@" in parts.netloc:
        raise FetchError("url_invalid", "the URL must not contain a user name or password")
    host = _canonical_host(parts.hostname or "")
    port = _DEFAULT_PORTS[parts.scheme] if port is None else port
    authority = f"[{host}]" if ":" in host else host
    if port != _DEFAULT_PORTS[parts.scheme]:
        authority += f":{port}"
    path = quote(parts.path or "/", safe="/%:@!$&'()*+,;=~")
    if parts.query:
        path += "?" + quote(parts.query, safe="/?%:@!$&'()*+,;=~")
    return _Target(
        host=host,
        url=httpcore.URL(scheme=parts.scheme, host=host, port=port, target=path),
        authority=authority.encode("ascii"),
    )


def _canonical_host(host: str) -> str:
    if not host:
        raise FetchError("url_invalid", "the URL has no host")
    if ":" in host:  # only a bracketed IPv6 literal has one
        try:
            return str(ipaddress.IPv6Address(host))
        except ValueError:
            raise FetchError("url_invalid", "the URL's host is not a valid IPv6 address") from None
    if _NUMERIC_HOST.fullmatch(host):
        try:
            return socket.inet_ntoa(socket.inet_aton(host.removesuffix(".")))
        except OSError:
            raise FetchError("url_invalid", "the URL's host is not a valid IPv4 address") from None
    try:
        host = host.encode("idna").decode("ascii").lower()
    except UnicodeError:
        host = ""
    if not _HOST_NAME.fullmatch(host):
        raise FetchError("url_invalid", "the URL's host is not a valid host name")
    return host


def _parse_networks(spec: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    try:
        return tuple(
            ipaddress.ip_network(part.strip(), strict=False) for part in spec.split(",") if part.strip()
        )
    except ValueError as exc:
        raise ValueError(f"BEATFRAME_FETCH_ALLOWED_NETWORKS: {exc}") from None


def _resolve(host: str, port: int) -> list[str]:
    return [info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


def _effective(ip: IPAddress) -> IPAddress:
    """The IPv4 address an IPv4-mapped or NAT64 (64:ff9b::/96) address reaches, else ``ip``."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped:
            return ip.ipv4_mapped
        if ip in _NAT64:
            return ipaddress.IPv4Address(int(ip) & 0xFFFF_FFFF)
    return ip


def _is_public(ip: IPAddress) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.sixtofour and not _is_public(ip.sixtofour):
        return False
    return (
        ip.is_global
        and not (
            ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast
            or ip.is_reserved or ip.is_unspecified
        )
        and not any(ip in net for net in _NEVER_PUBLIC)
    )


class _GuardedBackend(httpcore.SyncBackend):
    """Resolves and checks every host itself, then connects to a checked address, not the name.

    httpcore passes the URL's host to ``connect_tcp`` and, separately, as ``server_hostname`` to
    ``start_tls``, so TLS still verifies the certificate against the name.
    """

    def __init__(self, allowed: tuple, resolver: Resolver) -> None:
        self._allowed = allowed
        self._resolver = resolver

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        error: httpcore.ConnectError | None = None
        for address in self._addresses(host, port):
            try:
                return super().connect_tcp(address, port, timeout, local_address, socket_options)
            except httpcore.ConnectError as exc:
                error = exc
        raise error

    def _addresses(self, host: str, port: int) -> list[str]:
        try:
            literal = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        if literal is not None:
            if not self._permitted(literal):
                raise FetchError("url_forbidden", f"{host} is not a public address")
            return [host]
        try:
            answers = self._resolver(host, port)
        except OSError:
            raise FetchError("url_fetch_failed", f"could not resolve host {host}") from None
        if not answers:
            raise FetchError("url_fetch_failed", f"host {host} has no address")
        try:
            addresses = [ipaddress.ip_address(a) for a in dict.fromkeys(answers)]
        except ValueError:
            addresses = []
        if not addresses or not all(self._permitted(a) for a in addresses):
            # The addresses themselves are not echoed: they would map our internal DNS.
            raise FetchError("url_forbidden", f"{host} resolves to an address that is not public")
        return [str(a) for a in addresses]

    def _permitted(self, ip: IPAddress) -> bool:
        ip = _effective(ip)
        return any(ip in net for net in self._allowed) or _is_public(ip)
