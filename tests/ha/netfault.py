"""Network partitions between the topology's "hosts", made with nftables firewall rules.

Every host is a loopback address, and on loopback the kernel picks 127.0.0.1 as the source of a
connection to any 127.0.0.0/8 address, so a packet's addresses do not say which host sent it. The
owner of the socket does: each PostgreSQL node runs as an OS user of its own, and a rule in the
``output`` hook stamps every new connection's conntrack entry with the uid of the process that
opened it. A partition of one node then drops, in both directions and for connections already
open as well as new ones:

* every connection that node opened to another address (its Patroni to etcd, its walreceiver to
  the other node), and
* every connection another process opened to that node's address (HAProxy's health checks and
  sessions, the other node's replication, the test's own REST calls).

Its own connections to itself (Patroni to its PostgreSQL) go on. No rule touches a packet that
does not start and end on the loopback interface. The table is removed when the fault heals and
when the topology closes; ``nft list table inet automate_ha`` shows it meanwhile.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess

import pytest

TABLE = "automate_ha"


def available() -> str | None:
    """Why partitions cannot be made here, or None when they can."""
    if os.geteuid() != 0:
        return "network partitions need root (nftables rules and one OS user per node)"
    if shutil.which("nft") is None:
        return "nft is not installed (scripts/install-test-services installs nftables)"
    probe = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"nftables refuses rules here: {probe.stderr.strip()}"
    return None


def node_user(name: str) -> str:
    """The OS user one node's Patroni and PostgreSQL run as, created when missing."""
    user = f"automate-ha-{name}"[:32]
    try:
        pwd.getpwnam(user)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", user],
            check=True,
            capture_output=True,
        )
    return user


def _nft(script: str) -> None:
    done = subprocess.run(["nft", "-f", "-"], input=script, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"nft refused the rules: {done.stderr.strip()}\n{script}")


class Firewall:
    """The topology's table: conntrack marks by socket owner, and the partitions in force."""

    def __init__(self, users: dict[str, str]) -> None:
        reason = available()
        if reason:
            pytest.skip(reason)
        self.uids = {host: pwd.getpwnam(user).pw_uid for host, user in users.items()}
        stamps = "\n".join(
            f"        ct state new meta skuid {uid} ct mark set {uid}" for uid in self.uids.values()
        )
        self.remove()
        _nft(
            f"table inet {TABLE} {{\n"
            "    chain stamp {\n"
            "        type filter hook output priority -150; policy accept;\n"
            f"{stamps}\n"
            "    }\n"
            "}\n"
        )

    def cut(self, host: str) -> None:
        """Partition ``host`` from every other host (both directions)."""
        uid = self.uids[host]
        _nft(
            f"table inet {TABLE} {{\n"
            f"    chain cut_{uid} {{\n"
            "        type filter hook output priority 0; policy accept;\n"
            f"        oifname lo ct mark {uid} ct original ip daddr != {host} drop\n"
            f"        oifname lo ct mark != {uid} ct original ip daddr {host} drop\n"
            "    }\n"
            "}\n"
        )

    def heal(self, host: str) -> None:
        _nft(f"delete chain inet {TABLE} cut_{self.uids[host]}\n")

    @staticmethod
    def remove() -> None:
        subprocess.run(["nft", "delete", "table", "inet", TABLE], capture_output=True)
