"""``python -m tests.chaos [SCENARIO ...] [--count N --rate R]``: the chaos matrix, as a table."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
from pathlib import Path

from tests.chaos.cluster import Cluster
from tests.chaos.ledger import find_secret
from tests.chaos.platform import SECRET, TOKEN, Platform
from tests.chaos.scenarios import SCENARIOS, Result, run_scenario
from tests.chaos.sink import Sink


def table(results: list[Result]) -> str:
    head = (
        "| scenario | accepted | lost | dup. events | dup. runs | unexplained effects | "
        "explained dup. effects | dead | sender retries | recovery s | "
        "rate before/during/after /s | drain s |"
    )
    lines = [head, "|" + "---|" * 12]
    for r in results:
        lg = r.ledger
        lines.append(
            f"| {r.scenario} | {r.accepted} | {lg.lost} | {lg.duplicate_events} | {lg.duplicate_runs} "
            f"| {lg.unexplained_effects} | {lg.duplicate_effects} | {lg.dead} | {r.sender_retries} "
            f"| {r.recovery_seconds:.1f} | {r.rate_before:.0f} / {r.rate_during:.0f} / {r.rate_after:.0f} "
            f"| {lg.drain_seconds:.1f} |"
        )
    return "\n".join(lines)


async def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos", description=__doc__)
    parser.add_argument("scenarios", nargs="*", choices=[[], *SCENARIOS], default=[])
    parser.add_argument("--count", type=int, default=600, help="webhooks per scenario")
    parser.add_argument("--rate", type=float, default=60.0, help="webhooks per second")
    parser.add_argument("--fault-at", type=float, help="seconds into the drive (default: 25%% of it)")
    parser.add_argument("--fault-for", type=float, help="seconds (default: 30%% of the drive, >= 3)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "asgi.settings")
    duration = args.count / args.rate
    fault_at = args.fault_at if args.fault_at is not None else 0.25 * duration
    fault_for = args.fault_for if args.fault_for is not None else max(3.0, 0.3 * duration)
    root = Path(tempfile.mkdtemp(prefix="automate-chaos-run-"))
    cluster = Cluster(root / "pg")
    sink = Sink()
    platform = Platform(cluster.url(), sink.url, root)
    results: list[Result] = []
    try:
        platform.setup()
        for name in args.scenarios or list(SCENARIOS):
            result = await run_scenario(
                name, cluster, platform, sink,
                count=args.count, rate=args.rate, fault_at=fault_at, fault_for=fault_for,
            )  # fmt: skip
            results.append(result)
            print(f"{name}: {'ok' if result.ok else 'FAILED'}", file=sys.stderr, flush=True)
        # after every fault: the delivery token and the webhook secret, stored or logged anywhere?
        leaks = [*find_secret(cluster.url(), TOKEN, root), *find_secret(cluster.url(), SECRET, root)]
    finally:
        platform.stop()
        sink.close()
        cluster.close()
    print(table(results))
    print(f"secrets found in the database and the logs: {len(leaks)} {leaks or ''}")
    if args.json:
        args.json.write_text(
            json.dumps(
                [{"scenario": r.scenario, "accepted": r.accepted, **vars(r.ledger),
                  "recovery_seconds": r.recovery_seconds, "rate_before": r.rate_before,
                  "rate_during": r.rate_during, "rate_after": r.rate_after,
                  "sender_retries": r.sender_retries} for r in results]
                + [{"secrets_found": leaks}],
                indent=2,
            )
        )  # fmt: skip
    print(f"logs: {root}", file=sys.stderr)
    return 0 if all(r.ok for r in results) and not leaks else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
