"""The `parity` command: list, check and run course models in Keras and Lightning."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, TextIO

from parity import align, bench, inception, jobs
from parity.catalog import OPTIMIZERS, UnknownModelError, get_spec
from parity.lockstep import TOLERANCE
from parity.errors import ParityError
from parity.fileio import output_error_message, require_writable, write_json_atomic, write_text_atomic

if TYPE_CHECKING:
    from parity.datasets.series import SeriesOptions
    from parity.runner import EarlyStopping


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"must be a finite number, 0 or more, got {text}")
    return value


def _learning_rate(text: str) -> float:
    value = _positive_float(text)
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
    return value


def _early_stopping(text: str) -> EarlyStopping:
    """'METRIC[:PATIENCE[:MIN_DELTA]]' as parity.runner.EarlyStopping (the runner checks the metric against the
    model)."""
    from parity.runner import EarlyStopping

    monitor, *rest = text.split(":")
    if not monitor or len(rest) > 2:
        raise argparse.ArgumentTypeError(f"expected METRIC[:PATIENCE[:MIN_DELTA]], e.g. val_loss:2, got {text!r}")
    try:
        patience = int(rest[0]) if rest else EarlyStopping.patience
        min_delta = float(rest[1]) if len(rest) == 2 else EarlyStopping.min_delta
    except ValueError:
        raise argparse.ArgumentTypeError(f"PATIENCE must be a whole number and MIN_DELTA a number, got {text!r}") \
            from None
    if patience < 0 or not (math.isfinite(min_delta) and min_delta >= 0):
        raise argparse.ArgumentTypeError(f"PATIENCE and MIN_DELTA must be 0 or more, got {text!r}")
    return EarlyStopping(monitor, patience, min_delta)


def _column(text: str) -> str | int:
    """A CSV column: its name, or digits for its 0-based index."""
    if text.isdigit():
        return int(text)
    if not text.strip():
        raise argparse.ArgumentTypeError("expected a column name or a 0-based column index, got an empty name")
    if text.startswith("-") and text[1:].isdigit():
        raise argparse.ArgumentTypeError(f"a column index counts from 0, got {text}")
    return text


def _default_threads() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", choices=("auto", "cpu", "gpu"), default="auto",
                        help="where both frameworks run: auto = each uses a GPU when it sees one (default: auto)")
    parser.add_argument("--threads", type=_positive_int, default=_default_threads(),
                        help="CPU threads for each framework, set equally in both (default: all cores)")


def _frameworks(text: str) -> tuple[str, ...]:
    try:
        return jobs.parse_frameworks(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _add_frameworks(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--frameworks", type=_frameworks, default=jobs.FRAMEWORKS, metavar="A,B[,C]",
                        help="which frameworks to compare, of keras (Keras 3 on TensorFlow), lightning and "
                             "keras-torch (the same Keras models on Keras' torch backend) (default: keras,lightning)")


def _add_series(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--series", choices=("lab", "assignment"),
                        help="for the course's generated series: the labs' parameters or the assignments' "
                             "(default: the model's own)")
    parser.add_argument("--series-column", type=_column, metavar="NAME",
                        help="for a CSV series (--data-dir): the column of values, by name or 0-based index "
                             "(default: the course file's)")
    parser.add_argument("--time-column", type=_column, metavar="NAME",
                        help="for a CSV series (--data-dir): the column of times, by name or 0-based index, checked "
                             "for gaps (default: the course file's)")


def _add_vocab(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--vocab", metavar="PATH",
                        help="for the IMDB subword models: this WordPiece vocabulary (one token per line, [PAD] and "
                             "[UNK] first), or 'course' for the course's imdb_vocab_subwords.txt (downloaded once), "
                             "instead of one learnt from the training reviews")


class _Parser(argparse.ArgumentParser):
    """argparse with its errors on one line (the usage is one `--help` away), as every other error of the command."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}; see `{self.prog} --help`\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="parity", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    listing = commands.add_parser("list", help="every course model and which frameworks implement it")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    _add_common(listing)

    explain = commands.add_parser("explain", help="the framework differences a model meets, with their measured "
                                                  "effects, and its Keras and Lightning source side by side")
    explain.add_argument("model", metavar="MODEL", help="a model id (see `parity list`)")
    explain.add_argument("--json", action="store_true", help="machine-readable output")

    check = commands.add_parser("check", help="forward parity after Keras -> torch weight transfer")
    check.add_argument("models", nargs="*", metavar="MODEL", help="model ids (default: every implemented model)")
    check.add_argument("--json", action="store_true", help="machine-readable output")
    check.add_argument("--blocks", action="store_true",
                       help="InceptionV3 models: also the max abs diff after each mixed block, the hidden layer and "
                            "the output, in units of float32 eps times the block's largest value")
    _add_vocab(check)
    _add_frameworks(check)
    _add_common(check)

    run = commands.add_parser("run", help="train both frameworks on identical batches and write a report")
    run.add_argument("models", nargs="*", metavar="MODEL",
                     help="model ids (see `parity list`); several make a course run, as --all and --part do")
    run.add_argument("--all", action="store_true", dest="all_models",
                     help="course run of every model the harness runs in both frameworks (the others are listed "
                          "as skipped, with the reason)")
    run.add_argument("--part", type=_positive_int, metavar="N", help="course run of the models of course part N")
    run.add_argument("--force", action="store_true",
                     help="in a course run, run again the models whose report in OUT has the same settings "
                          "(default: skip them, so that a stopped course run resumes)")
    run.add_argument("--epochs", type=_positive_int, help="epochs (default: the course's)")
    run.add_argument("--seeds", type=_positive_int, default=1, help="seeds per framework (default: 1)")
    run.add_argument("--mode", choices=align.MODES, default="aligned",
                     help="aligned: torch starts from the Keras weights with matched settings; "
                          "native: each framework's own defaults (default: aligned)")
    run.add_argument("--native", action="append", default=[], metavar="DIFFERENCE", choices=align.SWITCHABLE,
                     help="in aligned mode, leave this one difference native (repeatable; see docs/differences.md)")
    run.add_argument("--data-dir", help="directory holding the data set's files (else $PARITY_DATA_DIR/<id>, "
                                        "else the download cache)")
    run.add_argument("--synthetic", action="store_true", help="small generated stand-in data of the same shapes")
    _add_vocab(run)
    run.add_argument("--weights", metavar="PATH",
                     help="the pretrained InceptionV3 trunk's weights, the course's notop .h5 (c2w3_inception_*; "
                          "default: the course's file from the download cache, downloaded and md5-checked if missing)")
    run.add_argument("--lr", type=_learning_rate, metavar="RATE",
                     help="train with this learning rate instead of the course's, e.g. the one `parity lrsweep` "
                          "suggests (default: the course's)")
    run.add_argument("--save", action="store_true",
                     help="keep each seed's trained models in OUT/MODEL/models (Keras .keras with and without the "
                          "optimizer, Lightning checkpoint and state_dict) with inputs.json, and check that each "
                          "loads back safely and predicts bit for bit as trained")
    run.add_argument("--early-stopping", type=_early_stopping, metavar="METRIC[:PATIENCE[:MIN_DELTA]]",
                     help="stop once PATIENCE epochs in a row did not improve METRIC (loss, val_loss, the model's "
                          "metric or val_<metric>) by more than MIN_DELTA, then restore the best epoch's weights "
                          "(Keras EarlyStopping(restore_best_weights=True); Lightning EarlyStopping and the best "
                          "checkpoint reloaded); e.g. val_loss:2 (default patience 3, min_delta 0)")
    run.add_argument("--checkpoint", choices=("best", "last"),
                     help="keep a checkpoint of each seed in OUT/MODEL/checkpoints: best = the best epoch of the "
                          "early-stopping metric (else val_loss), last = the latest epoch (Keras .keras, Lightning "
                          ".ckpt)")
    _add_series(run)
    run.add_argument("--out", type=Path, default=Path("runs"), help="output directory (default: runs)")
    run.add_argument("--quiet", action="store_true", help="no per-epoch progress from the frameworks")
    _add_frameworks(run)
    _add_common(run)

    sweep = commands.add_parser("lrsweep", help="the course's learning-rate sweep in both frameworks: loss against "
                                                "a rate that grows every epoch, and a suggested rate")
    sweep.add_argument("model", metavar="MODEL", help="a model whose course recipe sweeps the rate (series models)")
    sweep.add_argument("--epochs", type=_positive_int, help="epochs of the sweep (default: the course's)")
    sweep.add_argument("--seed", type=int, default=0, help="seed of the initial weights and batch order (default: 0)")
    sweep.add_argument("--data-dir", help="directory holding the data set's files (else $PARITY_DATA_DIR/<id>, "
                                          "else the download cache)")
    sweep.add_argument("--synthetic", action="store_true", help="small generated stand-in data of the same shapes")
    _add_vocab(sweep)
    _add_series(sweep)
    sweep.add_argument("--out", type=Path, default=Path("runs"),
                       help="writes OUT/MODEL/lrsweep.json and lrsweep.png (default: runs)")
    sweep.add_argument("--quiet", action="store_true", help="no per-epoch progress from the frameworks")
    _add_common(sweep)

    lockstep = commands.add_parser("lockstep", help="train both step by step from the same weights; report the drift")
    lockstep.add_argument("models", nargs="+", metavar="MODEL", help="model ids (see `parity list`)")
    lockstep.add_argument("--steps", type=_positive_int, default=100, help="training steps (default: 100)")
    lockstep.add_argument("--optimizer", default="spec", choices=("spec", *OPTIMIZERS),
                          help="the course's optimizer (spec) or another one at Keras' default lr (default: spec)")
    lockstep.add_argument("--lr", type=_positive_float, help="learning rate (default: the optimizer's)")
    lockstep.add_argument("--momentum", type=float, help="SGD momentum (default: the spec's, else 0)")
    lockstep.add_argument("--mode", choices=align.MODES, default="aligned",
                          help="aligned (default) or native: every difference left native")
    lockstep.add_argument("--native", action="append", default=[], metavar="DIFFERENCE", choices=align.SWITCHABLE,
                          help="in aligned mode, leave this one difference native (repeatable)")
    lockstep.add_argument("--tolerance", type=_positive_float, default=TOLERANCE,
                          help=f"relative loss difference that counts as parting (default: {TOLERANCE:g})")
    lockstep.add_argument("--seed", type=int, default=0, help="seed of the initial weights and batch order")
    lockstep.add_argument("--data-dir", help="directory holding the data set's files")
    lockstep.add_argument("--synthetic", action="store_true", help="small generated stand-in data of the same shapes")
    _add_vocab(lockstep)
    lockstep.add_argument("--out", type=Path, default=Path("runs"), help="writes OUT/lockstep/<run>/ (default: runs)")
    lockstep.add_argument("--json", action="store_true", help="print the comparisons as JSON")
    _add_frameworks(lockstep)
    _add_common(lockstep)

    catalog = commands.add_parser("differences", help="measure every documented framework difference; "
                                                      "write docs/differences.md")
    catalog.add_argument("--write", type=Path, metavar="PATH.md",
                         help="write the Markdown here and the numbers beside it as PATH.json (else print)")
    catalog.add_argument("--data-root", type=Path, default=os.environ.get("PARITY_DATA_DIR"),
                         help="a tree of data sets by id, like ../shared/data (default: $PARITY_DATA_DIR); "
                              "missing data sets use their synthetic stand-ins")
    catalog.add_argument("--steps", type=_positive_int, default=100, help="lockstep steps (default: 100)")
    catalog.add_argument("--json", action="store_true", help="print the measurements as JSON")
    catalog.add_argument("--threads", type=_positive_int, default=1,
                         help="CPU threads per framework (default: 1, as the committed document)")
    catalog.add_argument("--frameworks", type=_frameworks, default=jobs.ALL_FRAMEWORKS, metavar="A,B[,C]",
                         help="with all three (the default: keras,lightning,keras-torch) the lockstep setups also run "
                              "in Keras on torch, to split each model's drift into runtime and API; keras,lightning "
                              "measures the catalog alone")

    bench_parser = commands.add_parser("bench", help="training throughput of both frameworks on identical batches")
    bench_parser.add_argument("models", nargs="+", metavar="MODEL", help="model ids (see `parity list`)")
    bench_parser.add_argument("--batch-size", type=_positive_int, help="batch size (default: the course's)")
    bench_parser.add_argument("--mode", choices=align.MODES, default="native",
                              help="native: each framework's own optimizer implementation, as users run it; "
                                   "aligned: torch runs Keras' update rules in torch ops (default: native)")
    bench_parser.add_argument("--steps", type=_positive_int, default=bench.DEFAULT_STEPS,
                              help=f"steps per timed window; one more window warms up (default: {bench.DEFAULT_STEPS})")
    bench_parser.add_argument("--windows", type=_positive_int, default=bench.DEFAULT_WINDOWS,
                              help=f"timed windows, at least {bench.MIN_WINDOWS} (default: {bench.DEFAULT_WINDOWS})")
    bench_parser.add_argument("--repeats", type=_positive_int, default=bench.DEFAULT_REPEATS,
                              help="measure each trainer pair this often, each time in fresh worker processes and in "
                                   "alternating order, pooling the windows; the ratio's bootstrap draws repeats, then "
                                   "windows, so two or more let its interval carry between-repeat variation "
                                   f"(default: {bench.DEFAULT_REPEATS})")
    bench_parser.add_argument("--variant", nargs="+", default=["eager"], metavar="V",
                              help=f"one or more of {', '.join(bench.VARIANTS)} (default: eager)")
    bench_parser.add_argument("--scope", choices=(*bench.SCOPES, "both"), default="both",
                              help="compute: batches staged on the device; end_to_end: the real input pipelines "
                                   "(default: both)")
    bench_parser.add_argument("--input", nargs="+", choices=bench.INPUTS, default=list(bench.INPUTS),
                              help="input pipeline settings of the end_to_end scope: single_threaded (tf.data without "
                                   "parallel map or prefetch / DataLoader num_workers=0), recommended (tf.data AUTOTUNE "
                                   "map and prefetch / DataLoader with one worker process per CPU, persistent; "
                                   "default: both)")
    bench_parser.add_argument("--order-seed", type=int, metavar="N",
                              help="seed of the order in which the frameworks take turns (default: drawn; recorded "
                                   "in bench.json and in the command it records)")
    bench_parser.add_argument("--tf32", choices=("on", "off"), default="off",
                              help="TensorFloat-32 on GPU, set equally in both (default: off)")
    bench_parser.add_argument("--malloc", choices=bench.MALLOC_SETTINGS, default="tuned",
                              help="tuned: fixed glibc malloc thresholds in both workers, so freed tensors are not "
                                   "returned to the kernel and faulted in again every step; glibc: its defaults "
                                   "(default: tuned)")
    bench_data = bench_parser.add_mutually_exclusive_group()
    bench_data.add_argument("--data-dir", help="directory holding the data set's files (else $PARITY_DATA_DIR/<id>, "
                                               "else the download cache)")
    bench_data.add_argument("--synthetic", action="store_true", help="small generated stand-in data of the same shapes")
    _add_vocab(bench_parser)
    bench_parser.add_argument("--json", action="store_true", help="print the rows as JSON (progress goes to stderr)")
    bench_parser.add_argument("--out", type=Path, help="write OUT/bench.json and OUT/bench.md")
    bench_parser.add_argument("--markdown", type=Path, metavar="PATH",
                              help="write the table into PATH (between its generated-block markers, if it has them)")
    _add_frameworks(bench_parser)
    _add_common(bench_parser)

    summary = commands.add_parser("report", help="one table over runs and benches, with a backend recommendation")
    summary.add_argument("dirs", nargs="+", type=Path, metavar="DIR",
                         help="directories searched for report.json, bench.json and lockstep.json")
    summary.add_argument("--out", type=Path, metavar="PATH",
                         help="write to this file (atomically) instead of stdout; the Markdown summary (e.g. "
                              "summary.md) also writes summary.html (self-contained page) and the plots "
                              "summary-accuracy.png, summary-speed.png beside it (stdout gets the table only)")
    summary.add_argument("--json", action="store_true", help="machine-readable rows instead of Markdown")
    summary.add_argument("--margin", type=_margin, action="append", default=[], metavar="[METRIC=]VALUE[%]",
                         help="equivalence margin of lightning - keras (repeatable): VALUE in the metric's own units "
                              "(accuracy as a fraction: 0.01 = 1 accuracy point; mae in the data's units), or VALUE%% "
                              "of the keras mean; METRIC= (accuracy or mae) sets it for that metric only, else for "
                              "both (default: accuracy=0.01, mae=5%%)")

    predict = commands.add_parser("predict", help="both frameworks' trained models of a --save run on image files, "
                                                  "sentences or series windows: their answers and difference")
    predict.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="OUT/MODEL of a `parity run MODEL --save` run")
    predict.add_argument("inputs", nargs="+", metavar="INPUT",
                         help="an image file (image models), a sentence (text models), or a series window: "
                              "comma-separated numbers or a CSV file of them (series models)")
    predict.add_argument("--seed", type=int, help="which saved seed's models (default: the first saved)")
    predict.add_argument("--json", action="store_true", help="machine-readable output")
    _add_common(predict)

    inside = commands.add_parser("inside", help="look inside both trained models of a --save run: feature maps of "
                                                "a conv net, or the projector export of an embedding")
    inside.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="OUT/MODEL of a `parity run MODEL --save` run")
    inside.add_argument("--image", type=Path, metavar="PATH", help="the image whose feature maps are drawn "
                                                                   "(required for image models)")
    inside.add_argument("--seed", type=int, help="which saved seed's models (default: the first saved)")
    inside.add_argument("--out", type=Path, metavar="DIR", help="where the files go (default: RUN_DIR/inside)")
    inside.add_argument("--json", action="store_true", help="machine-readable output")
    _add_common(inside)

    preproc = commands.add_parser("preproc", help="c3w1_text_preproc: the course's tokenization and padding "
                                                  "walkthrough on its toy sentences and on bbc-text.csv")
    preproc.add_argument("--data-dir", help="directory holding bbc-text.csv (else $PARITY_DATA_DIR/bbc-text, else "
                                            "the download cache)")
    preproc.add_argument("--out", type=Path, default=Path("runs"),
                         help="writes OUT/c3w1_text_preproc/preproc.{json,md} (default: runs)")
    preproc.add_argument("--json", action="store_true", help="machine-readable output")

    generate = commands.add_parser("generate", help="next words after a seed text from both frameworks' trained "
                                                    "next-word models of a --save run (the course's C3W4 loop)")
    generate.add_argument("run", metavar="RUN_DIR_OR_MODEL",
                          help="OUT/MODEL of a `parity run MODEL --save` run, or a model id for runs/MODEL")
    generate.add_argument("--seed-text", metavar="TEXT", help="the text to continue (default: the course's)")
    generate.add_argument("--words", type=_positive_int, metavar="N",
                          help="how many words to add (default: the course's, 100)")
    generate.add_argument("--temperature", type=_non_negative_float, metavar="T",
                          help="sample from softmax(log p / T) instead of the greedy argmax (absent or 0: greedy)")
    generate.add_argument("--seed", type=int, default=0, metavar="S",
                          help="seed of the numpy Generator whose uniform draws both frameworks sample with (default 0)")
    generate.add_argument("--model-seed", type=int, metavar="N",
                          help="which saved seed's models (default: the first saved)")
    generate.add_argument("--out", type=Path, metavar="PATH", help="the JSON record (default: RUN_DIR/generate.json)")
    generate.add_argument("--json", action="store_true", help="machine-readable output")
    _add_common(generate)
    return parser


REPORT_METRICS = ("accuracy", "mae")


def _margin(text: str) -> tuple[str | None, float, bool]:
    """'[METRIC=]VALUE[%]' as (metric or None for every metric, value in metric units or as a fraction, relative)."""
    metric, _, value = text.rpartition("=")
    if metric and metric not in REPORT_METRICS:
        raise argparse.ArgumentTypeError(f"unknown metric {metric!r}; use one of {', '.join(REPORT_METRICS)}, "
                                         "e.g. accuracy=0.02 or mae=10%")
    relative = value.endswith("%")
    number = _positive_float(value.removesuffix("%"))
    return metric or None, number / 100 if relative else number, relative


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
    course_models = [row for row in rows if row["variant_of"] is None]  # a variant is listed under its model
    done = sum(all(row["implemented"].values()) for row in course_models)
    print(f"{'id':34} {'part/week':9} {'dataset':24} {'task':10} {'keras':>10} {'lightning':>10}")
    for row in rows:
        cells = [f"{row['params'][fw]:,}" if row["implemented"][fw] else "-" for fw in ("keras", "lightning")]
        name = row["id"] if row["variant_of"] is None else f"  {row['id']}"
        print(f"{name:34} C{row['part']}W{row['week']:<7} {row['dataset']:24} {row['task']:10} "
              f"{cells[0]:>10} {cells[1]:>10}")
    print(f"\n{done} of {len(course_models)} course models implemented in both frameworks "
          "(numbers: parameter count; -: not implemented yet; indented: a variant of the model above, run by its id)")
    return 0


def _cmd_explain(args: argparse.Namespace) -> int:
    from parity import explain

    record = explain.explanation(get_spec(args.model))
    if args.json:
        print(json.dumps(record, indent=2))
    else:
        print(explain.render(record), end="")
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    from parity import jobs
    from parity.runner import check_models, implemented_ids

    with jobs.worker_pool(device=args.device, threads=args.threads, quiet=True) as workers:  # one start each
        model_ids = _known_ids(args.models) or implemented_ids(args.device, args.threads, workers)
        results = check_models(model_ids, args.device, args.threads, workers, vocab=args.vocab,
                               frameworks=args.frameworks)
        blocks = _inception_blocks(model_ids, workers) if args.blocks else {}
    if args.json:
        print(json.dumps({"rows": results, "blocks": blocks} if args.blocks else results, indent=2))
    else:
        for row in results:
            verdict = "ok  " if row["passed"] else "FAIL"
            pair = f"{row['pair']:21} " if "pair" in row else ""  # rows name their pair unless keras,lightning
            print(f"{verdict} {row['model']:30} {pair}{row['mode']:9} max abs diff {row['max_abs_diff']:.2e} "
                  f"(tolerance {row['tolerance']:.1e})")
        for model_id, rows in blocks.items():
            print(f"{model_id}: per block (inference, random weights, the check's inputs)")
            print(inception.format_block_rows(rows))
    return 0 if all(row["passed"] for row in results) else 1


def _inception_blocks(model_ids: list[str], workers) -> dict[str, list[dict]]:
    """`parity check --blocks`: the per-block comparison of each InceptionV3 model on its check inputs."""
    from parity.datasets import load_dataset
    from parity.runner import CHECK_SEED, PROBE_SIZE

    return {model_id: inception.measure_blocks(
                model_id, load_dataset(get_spec(model_id), synthetic=True).probe_inputs(PROBE_SIZE), CHECK_SEED, workers)
            for model_id in model_ids if inception.uses_pretrained_trunk(get_spec(model_id))}


def _alignment(args: argparse.Namespace) -> align.Alignment:
    try:
        return align.Alignment.from_mode(args.mode, args.native)
    except ValueError as error:
        raise ParityError(str(error)) from None


def _cmd_lockstep(args: argparse.Namespace) -> int:
    from parity import lockstep

    options = lockstep.LockstepOptions(
        steps=args.steps, optimizer=args.optimizer, learning_rate=args.lr, momentum=args.momentum,
        alignments=(_alignment(args),), tolerance=args.tolerance, seed=args.seed, data_dir=args.data_dir,
        synthetic=args.synthetic, vocab=args.vocab, device=args.device, threads=args.threads, out_dir=args.out,
        frameworks=args.frameworks)
    results = []
    for model_id in _known_ids(args.models):
        result = lockstep.measure(model_id, options)
        results.append(result)
        for directory, comparison in zip(lockstep.write(result, args.out), result["comparisons"]):
            if not args.json:
                for pair, entry in comparison.get("pairs", {"": comparison}).items():  # every pair with --frameworks
                    sentence = lockstep.explain(entry, result["steps"], result["optimizer"], result["rounding_control"])
                    print(f"{model_id} {pair}: {sentence}" if pair else f"{model_id}: {sentence}")
                print(f"report: {directory / 'lockstep.md'}")
    if args.json:
        print(json.dumps(results, indent=2))
    return 0


def _cmd_differences(args: argparse.Namespace) -> int:
    from parity import differences

    log = (lambda line: print(line, file=sys.stderr, flush=True)) if args.json else print
    catalog = differences.build_catalog(args.data_root, args.steps, args.threads, progress=log,
                                        frameworks=args.frameworks)
    if args.write:
        for path in differences.write_catalog(catalog, args.write):
            log(f"wrote {path}")
    if args.json:
        print(json.dumps(catalog, indent=2))
    elif not args.write:
        print(differences.render_markdown(catalog))
    return 0


def _series_options(args: argparse.Namespace) -> SeriesOptions | None:
    """The series flags as parity.datasets.series.SeriesOptions; None when none was given."""
    if args.series is None and args.series_column is None and args.time_column is None:
        return None
    from parity.datasets.series import SeriesOptions

    return SeriesOptions(variant=args.series, value_column=args.series_column, time_column=args.time_column)


def _cmd_run(args: argparse.Namespace) -> int:
    from parity import course_run
    from parity.runner import RunOptions, run_model

    options = RunOptions(epochs=args.epochs, seeds=args.seeds, alignment=_alignment(args), data_dir=args.data_dir,
                         synthetic=args.synthetic, vocab=args.vocab, device=args.device, threads=args.threads, out_dir=args.out,
                         verbose=0 if args.quiet else 1, learning_rate=args.lr, series=_series_options(args),
                         save=args.save, early_stopping=args.early_stopping, checkpoint=args.checkpoint,
                         weights=args.weights, command=args.command_line, frameworks=args.frameworks)
    model_ids = course_run.select_models(args.models, all_models=args.all_models, part=args.part)
    if args.models and len(model_ids) == 1:  # one model named: it runs whatever OUT holds, and its errors end the command
        report_dir = run_model(model_ids[0], course_run.options_for(model_ids[0], options))
        walkthrough = report_dir / "preproc.md"  # c3w1_text_preproc trains nothing: its walkthrough is the report
        print(f"report: {walkthrough if walkthrough.is_file() else report_dir / 'report.md'}")
        return 0
    return course_run.run_course(model_ids, options, force=args.force).exit_code


def _cmd_lrsweep(args: argparse.Namespace) -> int:
    from parity import lrsweep

    options = lrsweep.SweepOptions(epochs=args.epochs, seed=args.seed, data_dir=args.data_dir, synthetic=args.synthetic,
                                   vocab=args.vocab,
                                   series=_series_options(args), device=args.device, threads=args.threads,
                                   out_dir=args.out, quiet=args.quiet)
    record = lrsweep.measure(_known_ids([args.model])[0], options)
    directory = lrsweep.write(record, args.out)
    for line in lrsweep.summary_lines(record):
        print(line)
    print(f"sweep: {directory / 'lrsweep.json'}, plot: {directory / 'lrsweep.png'}")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from parity import summary

    from parity.compare import Margin

    margins = {metric: Margin(value, relative) for given, value, relative in args.margin
               for metric in ((given,) if given else REPORT_METRICS)}
    rows = summary.summarize(args.dirs, warn=lambda message: print(f"parity: warning: {message}", file=sys.stderr),
                             margins=margins)
    if args.out is None:
        print(json.dumps(rows, indent=2) + "\n" if args.json else summary.render_markdown(rows, margins), end="")
    elif args.json:
        write_text_atomic(args.out, json.dumps(rows, indent=2) + "\n")
        print(f"summary: {args.out}")
    else:
        markdown, page, *plots = summary.write_summary(rows, margins, args.out)
        print(f"summary: {markdown}\nhtml: {page}" + (f"\nplots: {', '.join(map(str, plots))}" if plots else ""))
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    options = bench.BenchOptions(
        variants=tuple(args.variant), mode=args.mode, scopes=bench.SCOPES if args.scope == "both" else (args.scope,),
        device=args.device, threads=args.threads, batch_size=args.batch_size, steps=args.steps, windows=args.windows,
        repeats=args.repeats,
        tf32=args.tf32 == "on", malloc=args.malloc, data_dir=args.data_dir, synthetic=args.synthetic, vocab=args.vocab,
        inputs=tuple(dict.fromkeys(args.input)), order_seed=args.order_seed, frameworks=args.frameworks)
    options = bench.with_order_seed(options)
    model_ids = list(dict.fromkeys(_known_ids(args.models)))
    progress_stream = sys.stderr if args.json else sys.stdout
    rows = bench.run_bench(model_ids, options, bench.command_line(model_ids, options, args.markdown, args.out),
                           progress=lambda line: print(line, file=progress_stream, flush=True), quiet=args.json)
    written = [*(bench.write_outputs(rows, args.out) if args.out else ()),
               *((bench.write_markdown(rows, args.markdown),) if args.markdown else ())]
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for row in rows:
            print(bench.row_line(row))
        for path in written:
            print(f"bench: {path}")
    return 0



def _cmd_predict(args: argparse.Namespace) -> int:
    from parity import predict

    run = predict.open_run(args.run_dir, args.seed)
    rows = predict.predict(run, args.inputs, args.device, args.threads)
    print(json.dumps(rows, indent=2) if args.json else predict.render(run, rows))
    return 0 if all(row["passed"] for row in rows) else 1


def _cmd_generate(args: argparse.Namespace) -> int:
    from parity import generate

    run = generate.open_generator_run(args.run, args.model_seed)
    request = generate.default_request(run, args.seed_text, args.words, args.temperature, args.seed)
    record = generate.generate(run, request, args.device, args.threads)
    out = generate.output_path(run, args.out)
    write_json_atomic(out, record)
    print(json.dumps(record, indent=2) if args.json else f"{generate.render(record)}\nwritten: {out}")
    return 0 if record["same_weights"]["passed"] is not False else 1


def _cmd_inside(args: argparse.Namespace) -> int:
    from parity import inside, predict

    run = predict.open_run(args.run_dir, args.seed)
    out_dir = args.out or args.run_dir / "inside"
    if predict.input_kind(run.inputs) == "image":
        if args.image is None:
            raise ParityError(f"{run.model_id} is an image model: give --image PATH, the image whose feature maps "
                              "to draw (e.g. one of its validation images as PNG)")
        record = inside.look_at_feature_maps(run, args.image, out_dir, args.device, args.threads)
        text, written = inside.render_feature_maps(record), out_dir / "feature-maps.png"
        passed = all(row["passed"] for row in record["layers"])
    else:
        record = inside.export_embeddings(run, out_dir, args.device, args.threads)
        text, written, passed = inside.render_embeddings(record), out_dir, True
    print(json.dumps(record, indent=2) if args.json else f"{text}\nwritten: {written}")
    return 0 if passed else 1


def _cmd_preproc(args: argparse.Namespace) -> int:
    from parity import text_preproc

    result = text_preproc.walkthrough(args.data_dir)
    directory = text_preproc.write_walkthrough(result, args.out)
    print(json.dumps(result, indent=2) if args.json else f"{text_preproc.render_markdown(result)}written: {directory}")
    return 0


COMMANDS = {"list": _cmd_list, "explain": _cmd_explain, "check": _cmd_check, "run": _cmd_run, "lrsweep": _cmd_lrsweep, "lockstep": _cmd_lockstep,
            "differences": _cmd_differences, "report": _cmd_report, "bench": _cmd_bench,
            "predict": _cmd_predict, "inside": _cmd_inside, "preproc": _cmd_preproc, "generate": _cmd_generate}


# Each command's output flags: (argument, flag, "directory" it writes into or "file" it writes), checked before
# any work so that a long measurement does not end in an unwritable place.
OUTPUTS = {
    "run": (("out", "--out", "directory"),),
    "lrsweep": (("out", "--out", "directory"),),
    "lockstep": (("out", "--out", "directory"),),
    "bench": (("out", "--out", "directory"), ("markdown", "--markdown", "file")),
    "report": (("out", "--out", "file"),),
    "differences": (("write", "--write", "file"),),
    "inside": (("out", "--out", "directory"),),
    "preproc": (("out", "--out", "directory"),),
    "generate": (("out", "--out", "file"),),
}


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: TextIO | None = None, line: str | None = None) -> None:
    """The harness's own warnings (e.g. a skipped data file) as one `parity: warning:` line; others as Python
    shows them."""
    text = (f"parity: warning: {message}\n" if category.__module__.startswith("parity.")
            else warnings.formatwarning(message, category, filename, lineno, line))
    (file or sys.stderr).write(text)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `parity` console script."""
    args = _parser().parse_args(argv)
    args.command_line = ("parity", *(sys.argv[1:] if argv is None else argv))  # recorded in report.json
    try:
        for argument, flag, kind in OUTPUTS.get(args.command, ()):
            if getattr(args, argument) is not None:
                require_writable(getattr(args, argument), flag, kind)
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            return COMMANDS[args.command](args)
    except (ParityError, UnknownModelError) as error:
        print(f"parity: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # a full disk or an unwritable place met while writing: the user's to fix
        message = output_error_message(error)
        if message is None:
            raise
        print(f"parity: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as interrupt:  # a run that kept finished seeds says where (parity.runner.RunInterrupted)
        print(f"parity: interrupted; {interrupt or 'no report was written'}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
