"""The SSRF policy for caller-supplied hosts."""

from __future__ import annotations

import socket

import pytest

from crossroads.upstream.hosts import HostPolicy, HostRefused, parse_ip

DEFAULT = HostPolicy(["localhost", "127.0.0.1", "::1"])


@pytest.mark.parametrize(
    "url",
    [
        "https://api.example.com/v1",
        "http://example.com:8000",
        "http://127.0.0.1:8000/v1",
        "http://localhost:11434",
        "http://[::1]:8000/v1",
        "http://vllm.localhost:8000",
        "https://8.8.8.8/v1",
    ],
)
def test_allowed(url: str) -> None:
    assert DEFAULT.check_url(url) == url.rstrip("/")


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ftp://example.com", "only http"),
        ("file:///etc/passwd", "only http"),
        ("gopher://x", "only http"),
        ("http://user:pw@example.com", "credentials"),
        ("http://example.com@10.0.0.1", "credentials"),
        ("http://example.com/v1?x=1", "query"),
        ("http://example.com/v1#frag", "query"),
        ("http:///v1", "no host"),
        ("http://exa mple.com", "whitespace"),
        ("http://exämple.com", "non-ASCII"),
        ("http://example.com.", "malformed"),
        ("http://ex%61mple.com", "malformed"),
        ("http://10.1.2.3", "private"),
        ("http://172.16.0.1", "private"),
        ("http://192.168.0.10", "private"),
        ("http://127.0.0.2", "private"),
        ("http://0.0.0.0", "private"),
        ("http://100.64.1.1", "private"),
        ("http://224.0.0.1", "private"),
        ("http://169.254.169.254/latest/meta-data", "metadata"),
        ("http://169.254.170.2", "metadata"),
        ("http://[fd00:ec2::254]", "metadata"),
        ("http://metadata.google.internal", "metadata"),
        ("http://metadata", "metadata"),
        ("http://[fe80::1]", "private"),
        ("http://[fc00::1]", "private"),
        ("http://[::ffff:192.168.0.1]", "private"),
        ("http://[::ffff:169.254.169.254]", "metadata"),
        ("http://[64:ff9b::10.0.0.1]", "private"),
        ("http://[2002:a00:1::]", "private"),
        ("http://2130706433", "obfuscated"),
        ("http://0x7f000001", "obfuscated"),
        ("http://0x7f.1", "obfuscated"),
        ("http://0177.0.0.1", "obfuscated"),
        ("http://127.1", "obfuscated"),
        ("http://017700000001", "obfuscated"),
        ("http://printer.local", "local or internal"),
        ("http://db.internal", "local or internal"),
        ("http://x.corp", "local or internal"),
        ("http://abc.onion", "local or internal"),
        ("http://a.b.c.d.e.f.g.h.i.j.k.com", "too many labels"),
    ],
)
def test_refused(url: str, why: str) -> None:
    with pytest.raises(HostRefused, match=why) as caught:
        DEFAULT.check_url(url)
    assert caught.value.http_status == 400


def test_trusted_list_takes_names_ips_and_networks() -> None:
    policy = HostPolicy(["10.0.0.0/8", "gpu-box", "192.168.1.5"])
    assert policy.check_url("http://10.2.3.4:8000/v1")
    assert policy.check_url("http://gpu-box.internal".replace(".internal", ""))
    assert policy.check_url("http://192.168.1.5")
    with pytest.raises(HostRefused):
        policy.check_url("http://192.168.1.6")
    with pytest.raises(HostRefused):
        policy.check_url("http://localhost")  # not trusted here
    with pytest.raises(HostRefused, match="metadata"):
        HostPolicy(["169.254.0.0/16"]).check_url("http://169.254.169.254")


def test_resolved_addresses_are_checked() -> None:
    DEFAULT.check_resolved("api.example.com", "93.184.216.34")
    DEFAULT.check_resolved("localhost", "127.0.0.1")  # trusted by name
    DEFAULT.check_resolved("anything.example.com", "127.0.0.1")  # a trusted address stays trusted
    with pytest.raises(HostRefused, match="resolves to a private"):
        DEFAULT.check_resolved("rebind.example.com", "10.0.0.5")
    with pytest.raises(HostRefused, match="resolves to a private"):
        HostPolicy([]).check_resolved("rebind.example.com", "127.0.0.1")
    with pytest.raises(HostRefused):
        DEFAULT.check_resolved("rebind.example.com", "fe80::1%eth0")


def test_parse_ip_reads_every_spelling_like_the_resolver() -> None:
    for spelling in ("127.0.0.1", "2130706433", "0x7f.1", "0177.0.0.1", "127.1"):
        assert str(parse_ip(spelling)) == "127.0.0.1"
        assert socket.inet_aton(spelling) == socket.inet_aton("127.0.0.1")
    assert parse_ip("example.com") is None
    assert parse_ip("cafe.be") is None
