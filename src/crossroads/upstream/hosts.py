"""Where a caller may send us: the SSRF policy for client-supplied base URLs.

A custom host (`x-portkey-custom-host`, a config's `custom_host`) is checked twice: its
text here before anything is sent (scheme, credentials, metadata and private addresses in
every spelling inet_aton accepts: decimal, hex, octal, short forms), and every address its
name resolves to when the connection is made (`GuardedResolver`), so a public name that
points at a private address (DNS rebinding) is refused too. Entries of the trusted list
(hostnames, IPs or CIDR blocks) are exempt from the private-range rule, never from the
metadata rule.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

from crossroads.errors import BadRequest

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

METADATA_HOSTS = frozenset(
    {
        "169.254.169.254",
        "169.254.170.2",
        "100.100.100.200",
        "fd00:ec2::254",
        "metadata",
        "metadata.google.internal",
        "metadata.azure.com",
        "instance-data",
        "instance-data.ec2.internal",
    }
)
BLOCKED_SUFFIXES = (
    ".local",
    ".localdomain",
    ".internal",
    ".intranet",
    ".lan",
    ".home",
    ".corp",
    ".test",
    ".invalid",
    ".onion",
    ".localhost",
)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_6TO4 = ipaddress.IPv6Network("2002::/16")


class HostRefused(BadRequest):
    default_code = "invalid_custom_host"


class HostPolicy:
    def __init__(self, trusted: Iterable[str]) -> None:
        names: set[str] = set()
        networks: list[IPNetwork] = []
        for raw in trusted:
            entry = raw.strip().lower().strip("[]")
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                names.add(entry.rstrip("."))
        self._names = frozenset(names)
        self._networks = tuple(networks)
        self._accepted: dict[str, str] = {}

    def check_url(self, url: str) -> str:
        """Validate a client-supplied base URL; return it without a trailing slash.

        Answers for accepted URLs are remembered (a gateway sees the same few custom hosts
        over and over); refusals are not, so the cache cannot be filled by a caller's junk.
        """
        checked = self._accepted.get(url)
        if checked is not None:
            return checked
        checked = self._check_url(url)
        if len(self._accepted) < 1024:
            self._accepted[url] = checked
        return checked

    def _check_url(self, url: str) -> str:
        if not url or any(ord(c) <= 32 or ord(c) == 127 for c in url) or not url.isascii():
            raise HostRefused("Invalid custom host: it contains whitespace, control or non-ASCII characters")
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise HostRefused(f"Invalid custom host: {exc}") from None
        del port
        if parts.scheme not in ("http", "https"):
            raise HostRefused("Invalid custom host: only http:// and https:// URLs are allowed")
        if "@" in parts.netloc or parts.username is not None:
            raise HostRefused("Invalid custom host: credentials in the URL are not allowed")
        if parts.query or parts.fragment:
            raise HostRefused("Invalid custom host: a base URL cannot carry a query or fragment")
        host = (parts.hostname or "").lower()
        if not host:
            raise HostRefused("Invalid custom host: the URL has no host")
        if "%" in host or host.endswith("."):
            raise HostRefused("Invalid custom host: the host name is malformed")
        self.check_host(host)
        return url.rstrip("/")

    def check_host(self, host: str) -> None:
        if host in METADATA_HOSTS:
            raise HostRefused("Invalid custom host: cloud metadata endpoints are not allowed")
        ip = parse_ip(host)
        if ip is not None:
            if ":" not in host and str(ip) != host:
                raise HostRefused(
                    f"Invalid custom host: {host} is an obfuscated IP address (write it as {ip})"
                )
            inner = embedded_ipv4(ip)
            if str(ip) in METADATA_HOSTS or (inner is not None and str(inner) in METADATA_HOSTS):
                raise HostRefused("Invalid custom host: cloud metadata endpoints are not allowed")
            if not self.ip_allowed(ip):
                raise HostRefused(
                    f"Invalid custom host: {host} is a private, loopback or reserved address "
                    "(add it to trusted_custom_hosts to allow it)"
                )
            return
        if self.name_trusted(host):
            return
        if host.count(".") >= 10:
            raise HostRefused("Invalid custom host: too many labels in the host name")
        if host == "localhost" or host.endswith(BLOCKED_SUFFIXES):
            raise HostRefused(
                f"Invalid custom host: {host} is a local or internal name "
                "(add it to trusted_custom_hosts to allow it)"
            )

    def name_trusted(self, host: str) -> bool:
        if host in self._names:
            return True
        return host.endswith(".localhost") and "localhost" in self._names

    def ip_allowed(self, ip: IPAddress) -> bool:
        if str(ip) in METADATA_HOSTS:
            return False
        if any(ip in net for net in self._networks if net.version == ip.version):
            return True
        if str(ip) in self._names:
            return True
        inner = embedded_ipv4(ip)
        if inner is not None:
            return self.ip_allowed(inner)
        return ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_unspecified)

    def check_resolved(self, hostname: str, address: str) -> None:
        """Called for each address a custom host resolved to, before connecting."""
        if self.name_trusted(hostname.lower()):
            return
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if not self.ip_allowed(ip):
            raise HostRefused(
                f"Invalid custom host: {hostname} resolves to a private, loopback or reserved address"
            )


def parse_ip(host: str) -> IPAddress | None:
    """An IP literal in any spelling, or None for a name. `0x7f.1`, `2130706433` and `0177.0.0.1`
    all parse as 127.0.0.1, because that is how the C resolver (and so the connection) reads them."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if all(c in "0123456789abcdefx." for c in host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    if isinstance(ip, ipaddress.IPv4Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.sixtofour is not None and ip in _6TO4:
        return ip.sixtofour
    return None
