"""The first hour of a new user: the README's Python example and ``cberl demo``, timed on an
idle machine and next to two busy processes, in one run.

Each command runs in a fresh process, exactly as documented (the README example is the first
```python block of README.md). For each we record the wall time, and the longest silence:
the longest stretch without a line of output (progress or result), which must stay under
30 s. The background load is two processes spinning on the CPU (``python -c "while True:
pass"``), as a second user's jobs would on a 2-core machine.

Usage::

    python benchmarks/bench_first_hour.py            # README example and cberl demo
    python benchmarks/bench_first_hour.py --quick    # smaller data (a smoke run)

Writes ``results/first_hour.json`` and ``results/first_hour.md``.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, write_results  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def readme_example(quick: bool) -> str:
    code = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)[0]
    if quick:
        code = code.replace("n_dialogues=200", "n_dialogues=60").replace('"dlg0150"', '"dlg0045"')
    return code


def timed(command, env) -> dict:
    """Run ``command``; wall time, exit status, number of output lines, longest silence."""
    start = last = time.perf_counter()
    silence, lines = 0.0, 0
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=ROOT
    )
    tail = []
    for line in process.stdout:
        now = time.perf_counter()
        silence, last = max(silence, now - last), now
        lines += 1
        tail = (tail + [line.rstrip()])[-40:]  # the README example's report and search
    process.wait()
    end = time.perf_counter()
    silence = max(silence, end - last)
    return {"seconds": end - start, "returncode": process.returncode, "lines": lines,
            "longest_silence": silence, "tail": tail}  # fmt: skip


def spinners(n: int):
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--busy", type=int, default=2, help="background busy processes")
    args = parser.parse_args(argv)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "readme_example.py"
        script.write_text(readme_example(args.quick))
        demo = [sys.executable, "-m", "sklearn_cberl.cli", "demo", "--output-dir",
                str(Path(tmp) / "demo")]  # fmt: skip
        demo += ["--n-dialogues", "60"] if args.quick else []
        commands = {"README example": [sys.executable, str(script)], "cberl demo": demo}
        rows = []
        for load in ("idle", f"{args.busy} busy processes"):
            busy = spinners(args.busy) if load != "idle" else []
            try:
                time.sleep(2 if busy else 0)
                for name, command in commands.items():
                    result = timed(command, env)
                    rows.append({"command": name, "load": load, **result})
                    print(f"{name} ({load}): {result['seconds']:.0f} s, longest silence "
                          f"{result['longest_silence']:.0f} s, exit {result['returncode']}",
                          flush=True)  # fmt: skip
            finally:
                for process in busy:
                    process.kill()
    lines = [
        "# The first hour: the README example and cberl demo, idle and loaded",
        "",
        f"{machine()['machine']}; each command in a fresh process, as documented; "
        f"load = {args.busy} processes spinning on the CPU.",
        "",
        "| command | load | wall s | longest silence s | lines | exit |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        cells = [r["command"], r["load"], f"{r['seconds']:.0f}", f"{r['longest_silence']:.0f}",
                 str(r["lines"]), str(r["returncode"])]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Loaded / idle:", ""]
    for name in commands:
        idle, loaded = (r["seconds"] for r in rows if r["command"] == name)
        lines.append(f"* {name}: {loaded / idle:.2f}x")
    lines += ["", "Last lines printed (idle):", ""]
    for r in rows:
        if r["load"] == "idle":
            lines += [f"`{r['command']}`:", "", "```", *r["tail"], "```", ""]
    write_results("first_hour", args.quick, {"meta": machine(), "runs": rows}, "\n".join(lines))


if __name__ == "__main__":
    main()
