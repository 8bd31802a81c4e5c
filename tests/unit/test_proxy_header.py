"""The PROXY protocol header parser (HAProxy v1 and v2) for c2s listeners behind a proxy."""

from __future__ import annotations

import socket
import struct

import pytest

from meerkat.listeners.proxy_header import (
    V2_SIGNATURE,
    ProxyHeaderError,
    parse_proxy_header,
)

XML = b"<?xml version='1.0'?><stream:stream"


def v2(command: int, family: int, body: bytes) -> bytes:
    return V2_SIGNATURE + struct.pack("!BBH", command, family, len(body)) + body


def v2_inet(src: str, sport: int, dst: str = "10.0.0.1", dport: int = 5222) -> bytes:
    addrs = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!HH", sport, dport)
    return v2(0x21, 0x11, addrs)


def test_v1_tcp4_names_the_client_and_leaves_the_stream_after_it() -> None:
    header = b"PROXY TCP4 192.0.2.7 10.0.0.1 40123 5222\r\n"
    assert parse_proxy_header(header + XML) == (("192.0.2.7", 40123), len(header))


def test_v1_tcp6_names_the_client() -> None:
    header = b"PROXY TCP6 2001:db8::5 2001:db8::1 51000 5222\r\n"
    assert parse_proxy_header(header) == (("2001:db8::5", 51000), len(header))


def test_v1_unknown_keeps_the_socket_peer() -> None:
    header = b"PROXY UNKNOWN whatever follows\r\n"
    assert parse_proxy_header(header + XML) == (None, len(header))


@pytest.mark.parametrize("cut", [1, 5, 6, 20, 41])
def test_a_header_split_across_reads_asks_for_more(cut: int) -> None:
    header = b"PROXY TCP4 192.0.2.7 10.0.0.1 40123 5222\r\n"
    assert parse_proxy_header(header[:cut]) is None
    assert parse_proxy_header(v2_inet("192.0.2.7", 1)[: min(cut, 27)]) is None


@pytest.mark.parametrize(
    "data",
    [
        XML,
        b"PROXY TCP4 192.0.2.7 10.0.0.1 40123\r\n",
        b"PROXY TCP4 2001:db8::5 10.0.0.1 40123 5222\r\n",
        b"PROXY TCP4 192.0.2.7 10.0.0.1 65536 5222\r\n",
        b"PROXY TCP4 192.0.2.7 10.0.0.1 0401 5222\r\n",
        b"PROXY TCP4 192.0.2.300 10.0.0.1 40123 5222\r\n",
        b"PROXY UDP4 192.0.2.7 10.0.0.1 40123 5222\r\n",
        b"PROXY\r\n",
        b"PROXX TCP4",
        b"PROXY TCP4 " + b"1" * 120,
        V2_SIGNATURE[:11] + b"X" + bytes(4),
        v2(0x22, 0x11, bytes(12)),
        v2(0x11, 0x11, bytes(12)),
        v2(0x21, 0x11, bytes(8)),
        V2_SIGNATURE + struct.pack("!BBH", 0x21, 0x11, 5000),
    ],
)
def test_malformed_or_missing_headers_are_refused(data: bytes) -> None:
    with pytest.raises(ProxyHeaderError):
        parse_proxy_header(data)


def test_v2_inet_names_the_client_and_skips_tlvs() -> None:
    tlvs = bytes([0x01, 0x00, 0x02]) + b"h2"  # PP2_TYPE_ALPN
    addrs = socket.inet_aton("198.51.100.9") + socket.inet_aton("10.0.0.1")
    header = v2(0x21, 0x11, addrs + struct.pack("!HH", 61000, 5222) + tlvs)
    assert parse_proxy_header(header + XML) == (("198.51.100.9", 61000), len(header))


def test_v2_inet6_names_the_client() -> None:
    src = socket.inet_pton(socket.AF_INET6, "2001:db8::42")
    dst = socket.inet_pton(socket.AF_INET6, "2001:db8::1")
    header = v2(0x21, 0x21, src + dst + struct.pack("!HH", 443, 5222))
    assert parse_proxy_header(header) == (("2001:db8::42", 443), len(header))


def test_v2_local_and_unspecified_keep_the_socket_peer() -> None:
    local = v2(0x20, 0x00, b"")
    assert parse_proxy_header(local + XML) == (None, len(local))
    udp = v2(0x21, 0x12, bytes(12))
    assert parse_proxy_header(udp) == (None, len(udp))


def test_v2_waits_for_its_whole_declared_length() -> None:
    header = v2_inet("192.0.2.7", 40123)
    assert parse_proxy_header(header[:-1]) is None
    assert parse_proxy_header(header) == (("192.0.2.7", 40123), len(header))
