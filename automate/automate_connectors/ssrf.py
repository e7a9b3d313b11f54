"""Refusing requests to private networks (SSRF protection), on by default.

Every outgoing connection of the ``http``, ``slack`` and ``webhook`` connectors goes through
:class:`GuardedNetworkBackend`: at connect time the host is resolved once, every address is
checked, and the socket is opened to a checked address (the connection is *pinned*: there is no
second DNS lookup an attacker could answer differently). TLS still verifies the URL's host name
(SNI) and the ``Host`` header is unchanged. Redirects, when a step asks to follow them, open new
connections and are checked the same way.

Refused: loopback, private, link-local (including the cloud metadata address 169.254.169.254),
shared/CGNAT (100.64.0.0/10), benchmarking, multicast, reserved and unspecified addresses, in IPv4
and IPv6. Host spellings are normalised first: decimal (``2130706433``), octal (``0177.0.0.1``),
hex (``0x7f.1``), short (``127.1``) IPv4 forms, and IPv6 forms that embed an IPv4 address
(``::ffff:127.0.0.1``, NAT64 ``64:ff9b::/96``, 6to4, Teredo).

Operators allow internal APIs with ``AUTOMATE_HTTP_ALLOWED_HOSTS``: host names (``api.internal``,
``*.corp.example``), addresses or networks (``10.1.0.0/16``). Cloud metadata endpoints stay
refused even when allowlisted.
"""

from __future__ import annotations

import asyncio
import fnmatch
import ipaddress
import re
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from automate_core.exceptions import ConnectorError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

METADATA = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, DigitalOcean, Oracle, OpenStack
        "169.254.170.2",  # AWS ECS task metadata
        "fd00:ec2::254",  # AWS IPv6
        "100.100.100.200",  # Alibaba
        "192.0.0.192",  # Oracle (legacy)
    )
)
METADATA_HOSTS = frozenset({"metadata.google.internal", "metadata", "instance-data", "metadata.azure.com"})
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NUMERIC_V4 = re.compile(r"^(0x[0-9a-f]+|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+)){0,3}$", re.IGNORECASE)


class BlockedDestination(ConnectorError):
    """The destination is on a private network and not allowed."""

    default_retryable = False


def embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, NAT64, 6to4, Teredo), if any."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    return None


def normalize(ip: IPAddress) -> IPAddress:
    return embedded_ipv4(ip) or ip


def parse_literal(host: str) -> IPAddress | None:
    """``host`` as an address when it is one in any spelling a resolver accepts, else ``None``."""
    host = host.strip("[]").split("%", 1)[0]
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if _NUMERIC_V4.match(host):
        try:  # inet_aton: the classic parser (decimal, octal, hex, 1-4 parts), as getaddrinfo does
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            raise BlockedDestination(f"{host!r} is not a valid address.") from None
    return None


def is_public(ip: IPAddress) -> bool:
    for candidate in {ip, normalize(ip)}:
        if not candidate.is_global or candidate.is_multicast or candidate.is_unspecified:
            return False
    return True


@dataclass(frozen=True, slots=True)
class Policy:
    """What may be reached: public addresses, plus ``allowed`` hosts and networks."""

    allowed: Sequence[str] = ()
    enabled: bool = True
    _networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = field(default=(), repr=False)
    _names: tuple[str, ...] = field(default=(), repr=False)

    @classmethod
    def from_settings(cls) -> Policy:
        try:
            from django.conf import settings

            allowed = list(getattr(settings, "AUTOMATE_HTTP_ALLOWED_HOSTS", []) or [])
            enabled = bool(getattr(settings, "AUTOMATE_HTTP_SSRF_PROTECTION", True))
        except Exception:  # settings not configured: the safest policy
            allowed, enabled = [], True
        return cls.build(allowed, enabled=enabled)

    @classmethod
    def build(cls, allowed: Iterable[str], *, enabled: bool = True) -> Policy:
        networks, names = [], []
        entries = [e.strip().lower() for e in allowed if e and e.strip()]
        for entry in entries:
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                names.append(entry.rstrip("."))
        return cls(tuple(entries), enabled, tuple(networks), tuple(names))

    def host_allowed(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        return any(fnmatch.fnmatchcase(host, pattern) for pattern in self._names)

    def check_address(self, host: str, ip: IPAddress) -> None:
        """Raise :class:`BlockedDestination` unless ``ip`` (which ``host`` resolved to) may be used."""
        if ip in METADATA or normalize(ip) in METADATA:
            raise BlockedDestination(f"{host} resolves to a cloud metadata address; this is never allowed.")
        if not self.enabled or is_public(ip):
            return
        if self.host_allowed(host) or any(normalize(ip) in net or ip in net for net in self._networks):
            return
        raise BlockedDestination(
            f"{host} resolves to {ip}, a non-public address. If this internal API is intended, "
            f"add {host} to AUTOMATE_HTTP_ALLOWED_HOSTS (comma-separated host names, addresses or "
            "networks; under `automate up` a line in .env takes effect without a restart)."
        )

    async def resolve(self, host: str, port: int) -> list[IPAddress]:
        """Resolve ``host`` once and return the addresses that may be connected to (all checked)."""
        bare = host.strip("[]").rstrip(".").lower()
        if bare in METADATA_HOSTS:
            raise BlockedDestination(f"{host} is a cloud metadata endpoint; this is never allowed.")
        literal = parse_literal(bare)
        if literal is not None:
            addresses = [literal]
        else:
            addresses = await resolve_host(bare, port)
        if not addresses:
            raise BlockedDestination(f"{host} resolves to no address.")
        for ip in addresses:  # one bad address refuses the host: no picking the public one
            self.check_address(bare, ip)
        return addresses


async def resolve_host(host: str, port: int) -> list[IPAddress]:
    """DNS resolution (a module function so tests can stand in for a resolver)."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ConnectorError(f"Cannot resolve {host}: {exc.strerror}") from exc
    except OSError as exc:
        raise ConnectorError(f"Cannot resolve {host}: {type(exc).__name__}: {exc}") from exc
    out: list[IPAddress] = []
    for info in infos:
        ip = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if ip not in out:
            out.append(ip)
    return out


async def check_destination(host: str, port: int, allow: Iterable[str]) -> list[IPAddress]:
    """Resolve ``host`` and return its addresses, or raise :class:`BlockedDestination`."""
    return await Policy.build(allow).resolve(host, port)
