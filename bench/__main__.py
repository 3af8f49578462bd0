"""`make bench` = `python -m bench`: every hot-path benchmark in turn, then the summary of ratios.

Each benchmark runs in its own process (a fresh interpreter, as a worker would be), prints its
table and its last line `<name>: ratio=<x> (goal <y>)`; the summary repeats those lines. Budget on
the 2-core laptop this was written on: ≤ 20 minutes, most of it the two demo sweeps.
`python -m bench generation bbq` runs only the named ones.
"""

from __future__ import annotations

import subprocess
import sys
import time

BENCHES = ("adapter_swap", "generation", "bbq", "judge", "coherence", "sweep")


def main(argv: list[str]) -> int:
    names = argv or list(BENCHES)
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        print(f"unknown benchmark(s) {', '.join(unknown)} (known: {', '.join(BENCHES)})", file=sys.stderr)
        return 2
    summary, failed = [], 0
    started = time.time()
    for name in names:
        t0 = time.time()
        proc = subprocess.run([sys.executable, "-m", f"bench.{name}"], capture_output=True, text=True)
        sys.stdout.write(proc.stdout)
        if proc.returncode != 0:
            failed += 1
            sys.stdout.write(proc.stderr[-4000:])
            summary.append(f"{name}: FAILED (exit {proc.returncode})")
        else:
            summary += [ln for ln in proc.stdout.splitlines() if ": ratio=" in ln]
        print(f"[{name}: {time.time() - t0:.0f} s]", flush=True)
    print(f"\nsummary ({time.time() - started:.0f} s)")
    print("\n".join(summary))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
