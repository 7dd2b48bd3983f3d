"""How many times one ``veil anonymize`` of a single video opens its input (issue #13).

Runs the CLI in this process with ``av.open`` wrapped: every open of the input file is
counted, and so is every open that decoded from the start of the file (each of those
decodes frame 0 again). Prints one JSON line.

    VEIL_DATA=/work/shared/data python bench/count_opens.py [--clip video/hamilton/short_hamilton_clip.mp4]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import av

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # measure this checkout's veil, not an installed one


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clip", default="video/hamilton/short_hamilton_clip.mp4", help="path under $VEIL_DATA")
    ap.add_argument("--end", type=float, default=1.0, help="seconds of the clip to anonymize (--end)")
    args = ap.parse_args()
    src = Path(os.environ.get("VEIL_DATA", "../shared/data")) / args.clip
    opens: list[str] = []
    real_open = av.open

    def counting_open(target, *a, **kw):
        if str(target) == str(src) and (len(a) == 0 or a[0] == "r") and kw.get("mode", "r") == "r":
            opens.append(str(target))
        return real_open(target, *a, **kw)

    av.open = counting_open
    from typer.testing import CliRunner

    from veil.cli.main import app

    with tempfile.TemporaryDirectory() as tmp:
        dst = Path(tmp) / "out.mp4"
        result = CliRunner().invoke(app, ["anonymize", str(src), "-o", str(dst), "--end", str(args.end), "--preset", "fast"])
        ok = result.exit_code == 0 and dst.exists()
    print(json.dumps({"clip": args.clip, "exit_code": result.exit_code, "output_written": ok, "input_opens": len(opens)}))
    if not ok:
        print(result.output, file=sys.stderr)


if __name__ == "__main__":
    main()
