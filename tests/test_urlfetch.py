"""SSRF-safe URL fetching against real HTTP servers on loopback (no mocked HTTP layer).

Success cases allow ``127.0.0.1/32`` so the test servers can be reached; refusal cases allow
nothing, as in production. Every failure must leave ``dest``'s folder as it was.
"""

from __future__ import annotations

import hashlib
import io
import ipaddress
import math
import socket
import struct
import threading
import time
import wave
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote

import pytest

from beatframe.infra.errors import BadInputError
from beatframe.infra.urlfetch import FetchError, _effective, _is_public, fetch_to_file

LOCAL = "127.0.0.1/32"


def _wav() -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"".join(struct.pack("<h", int(8000 * math.sin(i / 10))) for i in range(8000)))
    return buf.getvalue()


WAV = _wav()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _send(self, status, body=b"", headers=()):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _redirect(self, location):
        self._send(302, headers=[("Location", location)])

    def do_GET(self):
        path, _, query = self.path.partition("?")
        args = {k: v[0] for k, v in parse_qs(query).items()}
        try:
            if path == "/audio.wav":
                self._send(200, WAV, [("Content-Type", "audio/wav; rate=8000")])
            elif path == "/named":
                self._send(200, WAV, [("Content-Disposition", args["cd"])])
            elif path == "/host":
                self._send(200, self.headers["Host"].encode())
            elif path == "/loop":
                self._redirect("/loop")
            elif path.startswith("/chain/"):
                left = int(path.rsplit("/", 1)[1])
                self._redirect(f"/chain/{left - 1}") if left else self._send(200, WAV)
            elif path == "/redirect":
                self._redirect(args["to"])
            elif path == "/huge":
                self.send_response(200)
                self.send_header("Content-Length", str(10**12))
                self.end_headers()
                self.close_connection = True
            elif path == "/endless":  # chunked, no Content-Length, 4 MiB
                self.send_response(200)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for _ in range(64):
                    self.wfile.write(b"10000\r\n" + b"\0" * 0x10000 + b"\r\n")
                self.wfile.write(b"0\r\n\r\n")
            elif path == "/slow":  # 100 bytes every 50 ms: 5 s in all
                self.send_response(200)
                self.send_header("Content-Length", "10000")
                self.end_headers()
                for _ in range(100):
                    self.wfile.write(b"x" * 100)
                    self.wfile.flush()
                    time.sleep(0.05)
            elif path == "/stall":
                self.send_response(200)
                self.send_header("Content-Length", "10")
                self.end_headers()
                self.wfile.flush()
                time.sleep(2)
            else:
                self.send_error(404)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up, as intended
            self.close_connection = True


class _Server(ThreadingHTTPServer):
    daemon_threads = True


@pytest.fixture(scope="module")
def servers():
    """Two real HTTP servers on 127.0.0.1 (different ports), as base URLs."""
    started = [_Server(("127.0.0.1", 0), _Handler) for _ in range(2)]
    for server in started:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    yield [f"http://127.0.0.1:{s.server_address[1]}" for s in started]
    for server in started:
        server.shutdown()
        server.server_close()


@pytest.fixture
def base(servers):
    return servers[0]


@pytest.fixture
def port(base):
    return int(base.rsplit(":", 1)[1])


@pytest.fixture
def dest(tmp_path):
    return tmp_path / "in" / "track.wav"


def _no_dns(host, port):
    raise AssertionError(f"unexpected DNS lookup of {host}")


def fetch(url, dest, **kw):
    kw.setdefault("max_bytes", 1_000_000)
    kw.setdefault("timeout", 5.0)
    return fetch_to_file(url, dest, **kw)


def refused(code, url, dest, **kw) -> FetchError:
    with pytest.raises(FetchError) as info:
        fetch(url, dest, **kw)
    assert info.value.code == code, str(info.value)
    assert not dest.parent.exists() or not any(dest.parent.iterdir()), "partial file left behind"
    return info.value


# --- success ---------------------------------------------------------------------------------


def test_downloads_atomically_with_hash_type_and_name(base, dest):
    result = fetch(f"{base}/audio.wav", dest, allowed_networks=LOCAL)
    assert dest.read_bytes() == WAV
    assert list(dest.parent.iterdir()) == [dest]
    assert result.final_url == f"{base}/audio.wav"
    assert result.bytes == len(WAV)
    assert result.sha256 == hashlib.sha256(WAV).hexdigest()
    assert result.content_type == "audio/wav"
    assert result.filename == "audio.wav"
    with wave.open(str(dest)) as w:
        assert w.getnframes() == 8000


def test_exactly_max_bytes_is_accepted(base, dest):
    assert fetch(f"{base}/audio.wav", dest, allowed_networks=LOCAL, max_bytes=len(WAV)).bytes == len(WAV)


@pytest.mark.parametrize(
    ("disposition", "expected"),
    [
        ('attachment; filename="../../etc/My Song.wav"', "My Song.wav"),
        ("attachment; filename*=UTF-8''%C3%A9t%C3%A9.wav", "été.wav"),
        ('attachment; filename="a\\\\b:c\x01.wav"', "b_c_.wav"),
        ('attachment; filename=".."', "download"),
        ("inline", "named"),
    ],
)
def test_filename_is_sanitized(base, dest, disposition, expected):
    result = fetch(f"{base}/named?cd={quote(disposition)}", dest, allowed_networks=LOCAL)
    assert result.filename == expected
    assert result.content_type is None


def test_follows_up_to_five_redirects(base, dest):
    result = fetch(f"{base}/chain/5", dest, allowed_networks=LOCAL)
    assert result.final_url == f"{base}/chain/0"
    assert dest.read_bytes() == WAV


def test_redirect_to_another_port_and_path(servers, dest):
    other = f"{servers[1]}/audio.wav"
    result = fetch(f"{servers[0]}/redirect?to={quote(other)}", dest, allowed_networks=LOCAL)
    assert result.final_url == other
    assert dest.read_bytes() == WAV


def test_connects_to_the_resolved_address_but_sends_the_name(port, dest):
    calls = []

    def resolver(host, p):
        calls.append((host, p))
        return ["127.0.0.1"]

    fetch(f"http://audio.example:{port}/host", dest, allowed_networks=LOCAL, resolver=resolver)
    assert dest.read_bytes() == f"audio.example:{port}".encode()
    assert calls == [("audio.example", port)]  # resolved once: what was checked is what connects


def test_tls_sni_uses_the_url_host(dest):
    received = []
    with socket.create_server(("127.0.0.1", 0)) as listener:

        def accept_one():
            conn, _ = listener.accept()
            with conn:
                conn.settimeout(2)
                received.append(conn.recv(65536))  # the ClientHello, SNI in clear

        thread = threading.Thread(target=accept_one, daemon=True)
        thread.start()
        url = f"https://audio.example:{listener.getsockname()[1]}/a.wav"
        refused("url_fetch_failed", url, dest, allowed_networks=LOCAL, resolver=lambda h, p: ["127.0.0.1"])
        thread.join(2)
    assert b"audio.example" in received[0]


# --- refused targets ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1", "127.1", "2130706433", "0x7f.1", "017700000001", "0x7f000001", "127.0.0.1.",
        "[::1]", "[::ffff:127.0.0.1]", "[::ffff:7f00:1]", "[::127.0.0.1]",
        "169.254.169.254", "[fe80::1]", "[fe80::1%25eth0]",
        "10.0.0.1", "172.16.0.1", "192.168.1.1", "100.64.0.1", "198.18.0.1", "192.0.2.1",
        "0.0.0.0", "0", "[::]", "224.0.0.1", "239.255.255.250", "240.0.0.1", "255.255.255.255",
        "[fc00::1]", "[fd12:3456::1]", "[fec0::1]", "[ff02::1]", "[2001::1]",
        "[64:ff9b::7f00:1]", "[64:ff9b::a00:1]", "[64:ff9b:1::1]", "[2002:7f00:1::]",
    ],
)
def test_non_public_literal_addresses_are_refused(host, port, dest):
    refused("url_forbidden", f"http://{host}:{port}/audio.wav", dest, resolver=_no_dns)


def test_metadata_endpoint_is_refused(dest):
    refused("url_forbidden", "http://169.254.169.254/latest/meta-data/", dest, resolver=_no_dns)


def test_allowed_networks_do_not_open_other_private_addresses(port, dest):
    for host in ("[::1]", "0.0.0.0", "10.0.0.1"):
        refused("url_forbidden", f"http://{host}:{port}/audio.wav", dest, allowed_networks=LOCAL)


def test_localhost_is_refused_with_the_system_resolver(port, dest):
    refused("url_forbidden", f"http://localhost:{port}/audio.wav", dest)


@pytest.mark.parametrize(
    "answers",
    [["10.0.0.5"], ["127.0.0.1"], ["93.184.216.34", "127.0.0.1"], ["::ffff:192.168.0.1"], ["nonsense"]],
)
def test_names_resolving_to_non_public_addresses_are_refused(answers, port, dest):
    err = refused("url_forbidden", f"http://files.example:{port}/a.wav", dest, resolver=lambda h, p: answers)
    assert "files.example" in str(err)
    assert not any(a in str(err) for a in answers)  # internal DNS answers are not echoed


@pytest.mark.parametrize(
    "to",
    [
        "http://[::1]:{port}/audio.wav",
        "http://169.254.169.254/latest/meta-data/",
        "http://0.0.0.0:{port}/audio.wav",
        "http://files.example:{port}/audio.wav",
    ],
)
def test_redirect_to_a_forbidden_address_is_refused(to, base, port, dest):
    url = f"{base}/redirect?to={quote(to.format(port=port))}"
    resolver = {"files.example": ["10.0.0.5"]}.get
    refused("url_forbidden", url, dest, allowed_networks=LOCAL, resolver=lambda h, p: resolver(h))


def test_redirect_to_another_scheme_is_refused(base, dest):
    refused("url_invalid", f"{base}/redirect?to={quote('file:///etc/passwd')}", dest, allowed_networks=LOCAL)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/a.wav", "file:///etc/passwd", "gopher://example.com/", "javascript:alert(1)",
        "//example.com/a.wav", "", "http:///a.wav", "http://user:pw@example.com/",
        "http://user@example.com/", "http://example.com\\@127.0.0.1/", "http://example.com:99999/",
        "http://[::1/", "http://[not-v6]/", "http://exa mple.com/", "http://example.com/\r\nX: y",
        "http://ex%41mple.com/", "http://a..b/", "http://256.0.0.1/", "http://0x/",
        "http://example.com/" + "a" * 2048,
    ],
)
def test_malformed_urls_are_refused(url, dest):
    err = refused("url_invalid", url, dest, resolver=_no_dns)
    assert err.http_status == 400
    assert isinstance(err, BadInputError)


def test_messages_never_echo_credentials_or_query(base, dest):
    assert "hunter2" not in str(refused("url_invalid", "http://me:hunter2@example.com/", dest))
    err = refused("url_fetch_failed", f"{base}/missing?token=SECRET", dest, allowed_networks=LOCAL)
    assert "SECRET" not in str(err) and "404" in str(err)


# --- limits and failures -------------------------------------------------------------------------


def test_too_large_content_length_is_refused_before_reading(base, dest):
    err = refused("file_too_large", f"{base}/huge", dest, allowed_networks=LOCAL)
    assert err.http_status == 413
    refused("file_too_large", f"{base}/audio.wav", dest, allowed_networks=LOCAL, max_bytes=len(WAV) - 1)


def test_streamed_body_past_max_bytes_is_aborted(base, dest):
    refused("file_too_large", f"{base}/endless", dest, allowed_networks=LOCAL, max_bytes=100_000)


def test_failure_keeps_an_existing_file(base, dest):
    dest.parent.mkdir()
    dest.write_bytes(b"old")
    with pytest.raises(FetchError):
        fetch(f"{base}/endless", dest, allowed_networks=LOCAL, max_bytes=100_000)
    assert dest.read_bytes() == b"old"
    assert list(dest.parent.iterdir()) == [dest]


@pytest.mark.parametrize("path", ["/slow", "/stall"])
def test_whole_download_deadline(base, dest, path):
    start = time.monotonic()
    err = refused("url_fetch_failed", f"{base}{path}", dest, allowed_networks=LOCAL, timeout=0.4)
    assert "timed out" in str(err)
    assert time.monotonic() - start < 1.5


@pytest.mark.parametrize("path", ["/loop", "/chain/6"])
def test_too_many_redirects(base, dest, path):
    err = refused("url_fetch_failed", f"{base}{path}", dest, allowed_networks=LOCAL)
    assert "redirects" in str(err)


def test_connection_refused(dest):
    with socket.create_server(("127.0.0.1", 0)) as s:
        free = s.getsockname()[1]
    refused("url_fetch_failed", f"http://127.0.0.1:{free}/a.wav", dest, allowed_networks=LOCAL)


def test_dns_failure(dest):
    def resolver(host, port):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    refused("url_fetch_failed", "http://nowhere.example/a.wav", dest, resolver=resolver)


def test_bad_allowed_networks_is_a_configuration_error(dest):
    with pytest.raises(ValueError, match="BEATFRAME_FETCH_ALLOWED_NETWORKS"):
        fetch("http://example.com/", dest, allowed_networks="10.0.0.0/8, not-a-net")


@pytest.mark.parametrize(
    "address", ["8.8.8.8", "93.184.216.34", "2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"]
)
def test_public_addresses_pass_the_check(address):
    assert _is_public(_effective(ipaddress.ip_address(address)))
