"""Refusing requests to private networks (SSRF protection), on by default.

Every outgoing connection of the ``http``, ``slack`` and ``webhook`` connectors goes through
:class:`GuardedNetworkBackend`: at connect time the host is resolved once, every address is
checked, and the socket is opened to a checked address (the connection is *pinned*: there is no
second DNS lookup an attacker could answer differently). TLS still verifies the URL's host name
(SNI) and the ``Host`` header is unchanged. Redirects, when a step asks to follow them, open new
connections and are checked the same way.

Refused: every address ``ipaddress`` does not call globally reachable or calls loopback, private,
link-local (including the cloud metadata address 169.254.169.254), shared/CGNAT (100.64.0.0/10),
multicast, reserved, site-local (``fec0::/10``) or unspecified, in IPv4 and IPv6. Host spellings
are normalised first: decimal (``2130706433``), octal (``0177.0.0.1``), hex (``0x7f.1``), short
(``127.1``) IPv4 forms; IPv6 forms that embed IPv4 addresses (mapped, translated, compatible,
NAT64, 6to4, Teredo, ISATAP) are refused when any address they carry is, and only the mapped and
the well-known NAT64 forms are accepted at all (see :func:`is_public`).

Operators allow internal APIs with ``AUTOMATE_HTTP_ALLOWED_HOSTS``: host names (``api.internal``,
``*.corp.example``), addresses or networks (``10.1.0.0/16``), each with an optional port
(``api.internal:8080``, ``[fd00::/8]:9000``, ``10.1.2.3:*`` for every port). An entry without a
port allows ports 80 and 443 only, so allowing a host does not open its database or its metrics
port. Cloud metadata endpoints stay refused even when allowlisted.
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
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

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
_LOW32_EMBEDDING = (
    ipaddress.ip_network("::/96"),  # IPv4-compatible (deprecated)
    ipaddress.ip_network("::ffff:0:0:0/96"),  # IPv4-translated (SIIT)
    _NAT64,
    ipaddress.ip_network("64:ff9b:1::/48"),  # local-use NAT64
)
_NUMERIC_V4 = re.compile(r"^(0x[0-9a-f]+|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+)){0,3}$", re.IGNORECASE)


class BlockedDestination(ConnectorError):
    """The destination is on a private network and not allowed."""

    default_retryable = False


def embedded_ipv4s(ip: IPAddress) -> list[ipaddress.IPv4Address]:
    """Every IPv4 address an IPv6 address carries: mapped (``::ffff:0:0/96``), translated
    (``::ffff:0:0:0/96``), IPv4-compatible (``::a.b.c.d``), NAT64 (``64:ff9b::/96`` and the
    local-use ``64:ff9b:1::/48``), 6to4 (``2002::/16``), Teredo (server and client) and ISATAP."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return []
    found: list[ipaddress.IPv4Address] = []
    low32 = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.ipv4_mapped is not None:
        found.append(ip.ipv4_mapped)
    if any(ip in net for net in _LOW32_EMBEDDING):
        found.append(low32)
    if ip.sixtofour is not None:
        found.append(ip.sixtofour)
    if ip.teredo is not None:
        found.extend(ip.teredo)
    if (int(ip) >> 32) & 0xFDFFFFFF == 0x00005EFE:  # ISATAP interface id: [02]00:5efe:a.b.c.d
        found.append(low32)
    return found


def embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The first IPv4 address an IPv6 address carries, if any (see :func:`embedded_ipv4s`)."""
    found = embedded_ipv4s(ip)
    return found[0] if found else None


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


def _plainly_public(ip: IPAddress) -> bool:
    """Globally reachable by every property ``ipaddress`` knows (its ``is_global`` alone lets some
    reserved and deprecated ranges through, e.g. ``fec0::/10`` and ``::ffff:0:0:0/96``)."""
    if not ip.is_global:
        return False
    if ip.is_multicast or ip.is_unspecified or ip.is_reserved or ip.is_loopback:
        return False
    if ip.is_link_local or ip.is_private:
        return False
    return not (isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local)


def is_public(ip: IPAddress) -> bool:
    """Whether ``ip`` is a public destination. An IPv6 address that carries IPv4 addresses is public
    only if they all are; besides, only the mapped and the well-known NAT64 forms (which mean the
    IPv4 address itself) are used: the other embedding ranges are refused whatever they carry."""
    carried = embedded_ipv4s(ip)
    if carried:
        if not all(_plainly_public(v4) for v4 in carried):
            return False
        mapped = isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None
        if mapped or (ip in _NAT64 and len(carried) == 1):
            return True
    return _plainly_public(ip)


DEFAULT_PORTS = frozenset({80, 443})


def _split_port(entry: str) -> tuple[str, frozenset[int] | None]:
    """An allow-list entry as (host, ports); ports ``None`` means any (``host:*``). An entry
    without a port allows the web ports 80 and 443 only."""
    if entry.startswith("["):  # [v6-address or network]:port
        host, _, rest = entry[1:].partition("]")
        port = rest.removeprefix(":") if rest.startswith(":") else ""
    elif entry.count(":") == 1:
        host, port = entry.split(":")
    else:
        host, port = entry, ""
    if not port:
        return host, DEFAULT_PORTS
    if port == "*":
        return host, None
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise BlockedDestination(
            f"AUTOMATE_HTTP_ALLOWED_HOSTS entry {entry!r}: {port!r} is not a port (1-65535 or *)."
        )
    return host, frozenset({int(port)})


@dataclass(frozen=True, slots=True)
class Policy:
    """What may be reached: public addresses, plus ``allowed`` hosts and networks."""

    allowed: Sequence[str] = ()
    enabled: bool = True
    _networks: tuple[tuple[Network, frozenset[int] | None], ...] = field(default=(), repr=False)
    _names: tuple[tuple[str, frozenset[int] | None], ...] = field(default=(), repr=False)

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
        networks: list[tuple[Network, frozenset[int] | None]] = []
        names: list[tuple[str, frozenset[int] | None]] = []
        entries = [e.strip().lower() for e in allowed if e and e.strip()]
        for entry in entries:
            host, ports = _split_port(entry)
            try:
                networks.append((ipaddress.ip_network(host, strict=False), ports))
            except ValueError:
                names.append((host.rstrip("."), ports))
        return cls(tuple(entries), enabled, tuple(networks), tuple(names))

    @staticmethod
    def _port_ok(ports: frozenset[int] | None, port: int | None) -> bool:
        return ports is None or port is None or port in ports

    def host_allowed(self, host: str, port: int | None = None) -> bool:
        host = host.lower().rstrip(".")
        return any(
            fnmatch.fnmatchcase(host, pattern) and self._port_ok(ports, port)
            for pattern, ports in self._names
        )

    def _entry_matches(self, host: str, ip: IPAddress) -> list[frozenset[int] | None]:
        """The port sets of the entries naming this host or a network holding this address."""
        host = host.lower().rstrip(".")
        found = [ports for pattern, ports in self._names if fnmatch.fnmatchcase(host, pattern)]
        found += [ports for net, ports in self._networks if normalize(ip) in net or ip in net]
        return found

    def check_address(self, host: str, ip: IPAddress, port: int | None = None) -> None:
        """Raise :class:`BlockedDestination` unless ``ip`` (which ``host`` resolved to) may be used
        on ``port`` (``None``: the address alone is judged)."""
        if ip in METADATA or any(v4 in METADATA for v4 in embedded_ipv4s(ip)):
            raise BlockedDestination(f"{host} resolves to a cloud metadata address; this is never allowed.")
        if not self.enabled or is_public(ip):
            return
        matches = self._entry_matches(host, ip)
        if any(self._port_ok(ports, port) for ports in matches):
            return
        if matches:
            raise BlockedDestination(
                f"{host} ({ip}) is allowed by AUTOMATE_HTTP_ALLOWED_HOSTS on ports 80 and 443 only, "
                f"not {port}. To allow this port, add '{host}:{port}' to AUTOMATE_HTTP_ALLOWED_HOSTS."
            )
        raise BlockedDestination(
            f"{host} resolves to {ip}, a non-public address. If this internal API is intended, "
            f"add {host} to AUTOMATE_HTTP_ALLOWED_HOSTS (a host name, address or network, with "
            "':port' for a port other than 80 and 443; under `automate up` a line in .env takes "
            "effect without a restart)."
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
            self.check_address(bare, ip, port)
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
