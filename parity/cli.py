"""The `parity` command: list, check and run course models in Keras and Lightning."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from parity import align
from parity.catalog import UnknownModelError, get_spec
from parity.errors import ParityError


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, got {value}")
    return value


def _default_threads() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", choices=("auto", "cpu", "gpu"), default="auto",
                        help="where both frameworks run: auto = each uses a GPU when it sees one (default: auto)")
    parser.add_argument("--threads", type=_positive_int, default=_default_threads(),
                        help="CPU threads for each framework, set equally in both (default: all cores)")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="parity", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    listing = commands.add_parser("list", help="every course model and which frameworks implement it")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    _add_common(listing)

    check = commands.add_parser("check", help="forward parity after Keras -> torch weight transfer")
    check.add_argument("models", nargs="*", metavar="MODEL", help="model ids (default: every implemented model)")
    check.add_argument("--json", action="store_true", help="machine-readable output")
    _add_common(check)

    run = commands.add_parser("run", help="train both frameworks on identical batches and write a report")
    run.add_argument("models", nargs="+", metavar="MODEL", help="model ids (see `parity list`)")
    run.add_argument("--epochs", type=_positive_int, help="epochs (default: the course's)")
    run.add_argument("--seeds", type=_positive_int, default=1, help="seeds per framework (default: 1)")
    run.add_argument("--mode", choices=align.MODES, default="aligned",
                     help="aligned: torch starts from the Keras weights with matched settings; "
                          "native: each framework's own defaults (default: aligned)")
    run.add_argument("--data-dir", help="directory holding the data set's files (else $PARITY_DATA_DIR/<id>, "
                                        "else the download cache)")
    run.add_argument("--synthetic", action="store_true", help="small generated stand-in data of the same shapes")
    run.add_argument("--out", type=Path, default=Path("runs"), help="output directory (default: runs)")
    run.add_argument("--quiet", action="store_true", help="no per-epoch progress from the frameworks")
    _add_common(run)
    return parser


def _known_ids(model_ids: list[str]) -> list[str]:
    for model_id in model_ids:
        get_spec(model_id)
    return model_ids


def _cmd_list(args: argparse.Namespace) -> int:
    from parity.runner import describe_models

    rows = describe_models(args.device, args.threads)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    done = sum(all(row["implemented"].values()) for row in rows)
    print(f"{'id':30} {'part/week':9} {'dataset':24} {'task':10} {'keras':>10} {'lightning':>10}")
    for row in rows:
        cells = [f"{row['params'][fw]:,}" if row["implemented"][fw] else "-" for fw in ("keras", "lightning")]
        print(f"{row['id']:30} C{row['part']}W{row['week']:<7} {row['dataset']:24} {row['task']:10} "
              f"{cells[0]:>10} {cells[1]:>10}")
    print(f"\n{done} of {len(rows)} course models implemented in both frameworks "
          "(numbers: parameter count; -: not implemented yet)")
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    from parity.runner import check_models, implemented_ids

    model_ids = _known_ids(args.models) or implemented_ids(args.device, args.threads)
    results = check_models(model_ids, args.device, args.threads)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for row in results:
            verdict = "ok  " if row["passed"] else "FAIL"
            print(f"{verdict} {row['model']:30} max abs diff {row['max_abs_diff']:.2e} "
                  f"(tolerance {row['tolerance']:.1e})")
    return 0 if all(row["passed"] for row in results) else 1


def _cmd_run(args: argparse.Namespace) -> int:
    from parity.runner import RunOptions, run_model

    options = RunOptions(epochs=args.epochs, seeds=args.seeds, mode=args.mode, data_dir=args.data_dir,
                         synthetic=args.synthetic, device=args.device, threads=args.threads, out_dir=args.out,
                         verbose=0 if args.quiet else 1)
    for model_id in _known_ids(args.models):
        report_dir = run_model(model_id, options)
        print(f"report: {report_dir / 'report.md'}")
    return 0


COMMANDS = {"list": _cmd_list, "check": _cmd_check, "run": _cmd_run}


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `parity` console script."""
    args = _parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except (ParityError, UnknownModelError) as error:
        print(f"parity: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("parity: interrupted; no report was written", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
