"""The platform through a real PgBouncer in transaction mode (started by the tests on 127.0.0.1).

``binaries`` finds (and installs, with scripts/install-test-services) the Debian services the
multi-host tests run: PgBouncer here, Patroni, etcd and HAProxy in tests/ha.
"""

from __future__ import annotations
