#!/usr/bin/env python3
"""What the whole-farm tests' paced HTTP load costs a local farm's CPU, side by side in one run.

The tests read the app through the load balancer while they deploy, restart and set config
(tests/test_local_farm.py: LOAD_CONNECTIONS wrk connections, each waiting LOAD_PACE_MS between
reads), so that every switch happens with requests in flight. That load runs as long as the step
does, on the two cores the whole suite shares. For each setting, alternating over the rounds, this
reads the CPU the farm's containers use (their cgroups, as bench/local_image.py reads them) for
SECONDS with the load on, and for SECONDS idle, and prints the reads a second, the CPU a second
(cores), and the CPU per read.

    python bench/load_cost.py [--farm demo] [--seconds 30] [--rounds 2] [--settings 8x100 4x100]

The farm must be up, converged and deployed (`make demo`, or `farm local up`, `farm converge` and
`farm deploy` of any local farm).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from local_image import containers_cpu  # noqa: E402  (bench/, this script's directory)

from farmhand.core.local.farm import LocalFarm  # noqa: E402
from farmhand.core.local.load import Load  # noqa: E402
from farmhand.core.project import Project  # noqa: E402


def measure(farm: str, url: str, seconds: float, setting: tuple[int, int] | None) -> tuple[float, int]:
    """CPU seconds of the farm's containers over SECONDS (with the load SETTING on, or idle), and reads."""
    before = containers_cpu(farm)
    if setting is None:
        time.sleep(seconds)
        return containers_cpu(farm) - before, 0
    connections, pace_ms = setting
    with Load(url, connections=connections, pace_ms=pace_ms) as load:
        time.sleep(max(seconds - 2, 1))  # Load waits a second on entry and on exit
    assert load.result is not None
    if load.result.failed:
        sys.exit(f"{load.result.failed} requests failed: the farm is not serving\n{load.result.output}")
    return containers_cpu(farm) - before, load.result.requests


def setting_of(text: str) -> tuple[int, int]:
    connections, _, pace = text.partition("x")
    if not (connections.isdigit() and pace.isdigit()) or int(connections) < 1 or int(pace) < 1:
        raise argparse.ArgumentTypeError(f"a setting is CONNECTIONSxPACE_MS, like 4x100, not {text!r}")
    return int(connections), int(pace)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--farm", default="demo")
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--settings", type=setting_of, nargs="+", default=[(8, 100), (4, 100)])
    args = parser.parse_args()

    local = LocalFarm(Project(ROOT), args.farm)
    urls = local.app_urls()
    if not urls:
        sys.exit(f"no local farm {args.farm!r} with a load balancer here: bring one up first")
    url = f"{urls[0]}/books"
    settings: list[tuple[int, int] | None] = [None, *args.settings]
    runs: dict[tuple[int, int] | None, list[tuple[float, int]]] = {s: [] for s in settings}
    for _ in range(args.rounds):
        for setting in settings:
            runs[setting].append(measure(args.farm, url, args.seconds, setting))

    span = f"{args.seconds:.0f} s, {args.rounds} rounds, medians"
    print(f"Local farm {args.farm!r}: its containers' CPU over {span}")
    print(f"{'load':<26}{'reads/s':>9}{'cores':>8}{'over idle':>11}{'ms CPU/read':>13}")
    idle = statistics.median(cpu for cpu, _ in runs[None]) / args.seconds
    for setting in settings:
        cores = statistics.median(cpu for cpu, _ in runs[setting]) / args.seconds
        reads = statistics.median(n for _, n in runs[setting]) / args.seconds
        name = "idle" if setting is None else f"{setting[0]} connections, {setting[1]} ms"
        per_read = f"{1000 * (cores - idle) / reads:.1f}" if reads else "-"
        print(f"{name:<26}{reads:>9.0f}{cores:>8.2f}{cores - idle:>11.2f}{per_read:>13}")
    loaded = [s for s in settings if s is not None]
    if len(loaded) >= 2:
        first, last = (statistics.median(cpu for cpu, _ in runs[s]) for s in (loaded[0], loaded[-1]))
        names = f"{loaded[0][0]}x{loaded[0][1]} / {loaded[-1][0]}x{loaded[-1][1]}"
        print(f"ratio {names}: {first / max(last, 1e-9):.2f}x CPU")


if __name__ == "__main__":
    main()
