"""Refusing requests to private networks (SSRF protection), on by default.

A URL's host is resolved and every address it resolves to must be public: loopback, private,
link-local (which includes the cloud metadata address 169.254.169.254), shared (CGNAT), multicast,
reserved and unspecified addresses are refused, in IPv4 and IPv6 (IPv4-mapped forms included).
Operators allow internal APIs explicitly with ``AUTOMATE_HTTP_ALLOWED_HOSTS`` (host names,
addresses or networks such as ``10.1.0.0/16``); cloud metadata addresses stay refused even then.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable

from automate_core.exceptions import ConnectorError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

METADATA = {
    ipaddress.ip_address("169.254.169.254"),
    ipaddress.ip_address("fd00:ec2::254"),
    ipaddress.ip_address("100.100.100.200"),
}
METADATA_HOSTS = {"metadata.google.internal", "metadata", "instance-data"}


class BlockedDestination(ConnectorError):
    """The destination is on a private network and not allowed."""

    default_retryable = False


def _normalize(ip: IPAddress) -> IPAddress:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def is_public(ip: IPAddress) -> bool:
    ip = _normalize(ip)
    return ip.is_global and not ip.is_multicast


def _allowed(host: str, ip: IPAddress, allow: Iterable[str]) -> bool:
    for entry in allow:
        entry = entry.strip().lower()
        if not entry:
            continue
        if entry == host.lower():
            return True
        try:
            if _normalize(ip) in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue
    return False


async def check_destination(host: str, port: int, allow: Iterable[str]) -> list[IPAddress]:
    """Resolve ``host`` and return its addresses, or raise :class:`BlockedDestination`."""
    allow = list(allow)
    if host.lower().rstrip(".") in METADATA_HOSTS:
        raise BlockedDestination(f"{host} is a cloud metadata endpoint.")
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ConnectorError(f"Cannot resolve {host}: {exc.strerror}") from exc
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
    if not addresses:
        raise BlockedDestination(f"{host} resolves to no address.")
    for ip in addresses:
        if _normalize(ip) in METADATA:
            raise BlockedDestination(f"{host} resolves to a cloud metadata address.")
        if not is_public(ip) and not _allowed(host, ip, allow):
            raise BlockedDestination(
                f"{host} resolves to {ip}, a non-public address. Allow it explicitly with "
                "AUTOMATE_HTTP_ALLOWED_HOSTS if this internal API is intended."
            )
    return addresses
