"""The ``nnumpy`` command (also ``python -m nnumpy``).

    nnumpy train --arch 784-100-10 --lr 0.05 --epochs 20 --out runs/NAME   train one MLP
    nnumpy sweep --preset practical --out runs/NAME [--jobs 2]             the practical's exercise 2
    nnumpy evaluate runs/NAME                                              test a trained run
    nnumpy gradcheck --arch 784-100-200-50-10 [--torch]   check backprop by finite differences / PyTorch
    nnumpy download mnist fashion-mnist [--mirror URL]     fetch and verify datasets
    nnumpy verify mnist                                    check local dataset copies
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import warnings

import numpy as np

from ._argtypes import positive_int, seconds, seed


def parse_arch(text):
    """"784-100-10" -> [784, 100, 10] (an argparse type: bad input exits with code 2)."""
    try:
        sizes = [int(s) for s in str(text).split("-")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected layer sizes like 784-100-10, got {text!r}") from None
    if len(sizes) < 2 or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"need at least two positive sizes (input and output), got {text!r}")
    return sizes


#: gradcheck --loss NAME: (loss class name, what the model's logits pass through first, kind of target)
LOSSES = {
    "cross_entropy": ("CrossEntropyLoss", None, "classes"),
    "nll": ("NLLLoss", "log_softmax", "classes"),
    "multi_margin": ("MultiMarginLoss", None, "classes"),
    "bce_with_logits": ("BCEWithLogitsLoss", None, "binary"),
    "bce": ("BCELoss", "sigmoid", "binary"),
    "mse": ("MSELoss", None, "real"),
    "l1": ("L1Loss", None, "real"),
    "huber": ("HuberLoss", None, "real"),
    "smooth_l1": ("SmoothL1Loss", None, "real"),
}


def _loss_problem(name, model, rng, batch, n_out):
    """(loss, model ending as the loss expects, targets, words) for gradcheck --loss NAME."""
    import nnumpy as nnp
    cls, head, kind = LOSSES[name]
    if head == "log_softmax":
        model = nnp.Sequential(model, nnp.LogSoftmax(dim=1))
    elif head == "sigmoid":
        model = nnp.Sequential(model, nnp.Sigmoid())
    if kind == "classes":
        y = rng.integers(0, n_out, batch)
    elif kind == "binary":
        y = rng.integers(0, 2, (batch, n_out)).astype(np.float64)
    else:
        y = rng.standard_normal((batch, n_out))
    words = f"{cls}" + (f" after {'LogSoftmax' if head == 'log_softmax' else 'Sigmoid'}" if head else "")
    return getattr(nnp, cls)(), model, y, words


def _gradcheck(args):
    import nnumpy as nnp
    from .runconfig import ConfigError

    if args.no_fd and not args.torch:
        raise ConfigError("--no-fd without --torch leaves nothing to check")
    if args.torch:
        from .interop import require_torch
        try:
            require_torch()                       # before the finite differences, not after
        except ImportError as e:
            raise ConfigError(str(e)) from None
    rng = np.random.default_rng(args.seed)
    if args.model == "mlp":
        arch = args.arch if args.arch is not None else [784, 100, 200, 50, 10]
        activation = args.activation if args.activation is not None else "relu"
        model = nnp.MLP(arch, activation=activation, rng=args.seed)
        x = rng.random((args.batch, arch[0]))                 # pixel-like inputs in [0, 1)
        what = f"{arch} with {activation}"
    else:
        from .models import MODELS, build_model
        given = [f"--{k}" for k in ("arch", "activation") if getattr(args, k) is not None]
        if given:
            raise ConfigError(f"{' and '.join(given)} describe{'s' if len(given) == 1 else ''} the layers of "
                              f"--model mlp; --model {args.model} has its own")
        model = build_model(args.model, rng=args.seed)
        x = rng.random((args.batch,) + MODELS[args.model][1])    # images in [0, 1)
        what = args.model
    n_out = arch[-1] if args.model == "mlp" else 10
    crit, model, y, loss_words = _loss_problem(args.loss, model, rng, args.batch, n_out)
    print(f"model: {what}, {model.num_parameters():,} parameters; loss: {loss_words}; "
          f"batch of {args.batch} random inputs, seed {args.seed}\n")
    ok = True
    if not args.no_fd:
        report = nnp.gradcheck(model, x, target=y, loss=crit, max_checks=args.max_checks, seed=args.seed)
        print(report, end="\n\n")
        ok &= report.ok
    if args.torch:
        from .interop import compare_with_torch
        for dt in args.dtype:
            report = compare_with_torch(model, x, y, crit, dtype=dt)
            print(report, end="\n\n")
            ok &= report.ok
    return 0 if ok else 1


def _run_config(args):
    from .runconfig import RunConfig
    from .runconfig import ConfigError
    if args.model != "mlp":
        given = [f"--{k}" for k in ("arch", "activation") if getattr(args, k) is not None]
        if given:
            raise ConfigError(f"{' and '.join(given)} describe{'s' if len(given) == 1 else ''} the layers of "
                              f"--model mlp; --model {args.model} has its own")
        arch, activation = None, None
    else:
        arch = args.arch if args.arch is not None else [784, 100, 10]
        activation = args.activation if args.activation is not None else "relu"
    return RunConfig(model=args.model, arch=arch, activation=activation, optimizer=args.optimizer, lr=args.lr,
                     dataset=args.dataset or "mnist", momentum=args.momentum, schedule=args.schedule, epochs=args.epochs,
                     batch_size=args.batch_size, val_fraction=args.val_fraction, seed=args.seed,
                     data_root=args.data_root, download=not args.offline,
                     mirrors=args.mirror, limit_train=args.limit_train, limit_test=args.limit_test)


def _check_out(args):
    from .runconfig import ConfigError
    if args.out is not None and not args.out.strip():
        raise ConfigError("--out needs a folder name")


#: train's options that --resume takes from the run folder (dest, default when not given)
_RUN_OPTIONS = {"model": "mlp", "arch": None, "activation": None, "optimizer": "sgd", "lr": 0.05,
                "momentum": 0.9, "schedule": "cosine", "batch_size": 64, "val_fraction": 0.1, "seed": 0,
                "dataset": None, "limit_train": None, "limit_test": None, "out": None, "overwrite": False}


def _resumed_config(args):
    """The configuration of the run folder args.resume, with --epochs and the data's location from the
    command line; any other option given is a ConfigError (the run keeps its own)."""
    import dataclasses
    from .experiments import _run_config_of
    from .runconfig import ConfigError
    given = [f"--{k.replace('_', '-')}" for k, default in _RUN_OPTIONS.items() if getattr(args, k) != default]
    if given:
        raise ConfigError(f"--resume continues the run with its own configuration; "
                          f"{', '.join(given)} cannot be given with it (only --epochs and where the data is: "
                          f"--data-root, --offline, --mirror)")
    cfg = _run_config_of(args.resume, need_model=False)
    changes = {"download": not args.offline}
    if args.epochs is not None:
        changes["epochs"] = args.epochs
    if args.data_root is not None:
        changes["data_root"] = args.data_root
    if args.mirror is not None:
        changes["mirrors"] = args.mirror
    return dataclasses.replace(cfg, **changes).validate()


def _train(args):
    from .experiments import describe_model, train_run
    _check_out(args)
    if args.resume is not None:
        if not args.resume.strip():
            from .runconfig import ConfigError
            raise ConfigError("--resume needs a run folder")
        cfg = _resumed_config(args)
        from .experiments import _resume_point
        _resume_point(args.resume, cfg)                      # (a ConfigError before anything is printed)
        print(f"resuming {args.resume}: {describe_model(cfg)} on {cfg.dataset}, {cfg.epochs} epochs in all",
              flush=True)
        m = train_run(cfg, args.resume, progress=None if not args.quiet else False, verbose=True, resume=True)
        print(f"validation accuracy {100 * m['val_acc']:.2f} %, test accuracy {100 * m['test_acc']:.2f} % "
              f"({m['seconds']:.1f} s); files in {args.resume}/")
        return 0
    if args.epochs is None:
        args.epochs = 20
    cfg = _run_config(args).validate()
    name = f"{'-'.join(map(str, cfg.arch))}-{cfg.activation}" if cfg.model == "mlp" else cfg.model
    out = args.out or f"runs/{name}-lr{cfg.lr:g}"
    print(f"training {describe_model(cfg)} on {cfg.dataset}: {cfg.optimizer} lr "
          f"{cfg.lr:g}, {cfg.epochs} epochs, batch {cfg.batch_size}; writing {out}/", flush=True)
    m = train_run(cfg, out, progress=None if not args.quiet else False, verbose=True, overwrite=args.overwrite)
    print(f"validation accuracy {100 * m['val_acc']:.2f} %, test accuracy {100 * m['test_acc']:.2f} % "
          f"({m['seconds']:.1f} s); files in {out}/")
    return 0


def _sweep(args):
    from .experiments import PRESETS, load_sweep_config, sweep
    from .runconfig import ConfigError
    spec = PRESETS[args.preset] if args.preset else load_sweep_config(args.config)
    overrides = {k: v for k, v in (("epochs", args.epochs), ("tune_epochs", args.tune_epochs),
                                   ("seed", args.seed), ("dataset", args.dataset), ("data_root", args.data_root),
                                   ("mirrors", args.mirror),
                                   ("limit_train", args.limit_train), ("limit_test", args.limit_test))
                 if v is not None}
    if args.offline:
        overrides["download"] = False
    _check_out(args)
    from .parallel import check_address
    scheduler, what = args.scheduler, "--scheduler"
    if scheduler is None and args.jobs is None and os.environ.get("NNUMPY_SCHEDULER", "").strip():
        scheduler, what = os.environ["NNUMPY_SCHEDULER"], "NNUMPY_SCHEDULER"
    if args.scheduler is not None and args.scheduler.strip() != "local" and args.jobs is not None:
        raise ConfigError("--jobs sets local worker processes; with --scheduler the cluster's workers run the "
                          "trials: give one of the two")
    if scheduler is not None and scheduler.strip() == "local":
        scheduler = None
    if scheduler is not None:
        check_address(scheduler, what)
    if args.connect_timeout > 3600:
        raise ConfigError(f"--connect-timeout must be at most 3600 seconds, got {args.connect_timeout:g}")
    jobs = args.jobs or 1
    if jobs > (os.cpu_count() or 1):
        print(f"nnumpy sweep: warning: --jobs {jobs} is more than this machine's {os.cpu_count()} cores: the "
              f"trials will share them (each trains on one core)", file=sys.stderr)
    stem = args.preset or os.path.splitext(os.path.basename(args.config))[0]
    out = args.out or f"runs/sweep-{stem}"
    trials = sum(len(v["lrs"]) + 1 for v in spec["variants"])
    where = f"the Dask cluster at {scheduler}" if scheduler else f"{jobs} process(es)"
    print(f"sweep of {len(spec['variants'])} variants ({trials} trials) on {where}; writing {out}/", flush=True)
    results = sweep(spec, out, jobs=jobs, overrides=overrides, progress=False if args.quiet else None,
                    restart=args.restart or args.overwrite, resume=args.resume, scheduler=scheduler,
                    connect_timeout=args.connect_timeout)
    print(open(os.path.join(out, "summary.md")).read())
    failed = [r for r in results if "failed" in r.get("status", "")]
    fav = next((r for r in results if "test_acc" in r), None)
    if fav is not None:
        print(f"favourite: {fav['variant']}, test accuracy {100 * fav['test_acc']:.2f} %; files in {out}/")
    if failed:
        print(f"nnumpy sweep: error: {len(failed)} variant(s) did not finish because a trial raised an error: "
              f"{failed[0]['variant']}: {failed[0]['status']}; the errors are in {out}/tuning.csv and the "
              f"trials' trial.json; run the same command again to retry them", file=sys.stderr)
        return 1
    if fav is None:
        print(f"nnumpy sweep: no variant finished training (every learning rate diverged); the summary is in "
              f"{out}/", file=sys.stderr)
        return 1
    return 0


def _evaluate(args):
    from .experiments import evaluate_run
    r = evaluate_run(args.run_dir)
    print(open(f"{args.run_dir}/evaluation/confusion.txt").read())
    print(f"wrote {args.run_dir}/evaluation/ (confusion.png, confusion.txt, misclassified.png, evaluation.json); "
          f"{r['misclassified']} test images misclassified")
    return 0


def _data_arguments(p):
    from .datasets import DATASETS
    p.add_argument("--dataset", choices=list(DATASETS), help="dataset (default: mnist, or the sweep file's)")
    p.add_argument("--data-root", metavar="DIR",
                   help="folder with the dataset's four IDX files (default: search, then download; "
                        "see also NNUMPY_DATA)")
    p.add_argument("--offline", action="store_true", help="never download")
    p.add_argument("--mirror", action="append", metavar="URL",
                   help="base URL to download the dataset from instead of its usual mirrors (repeatable)")
    p.add_argument("--limit-train", type=positive_int, help="use only the first N training images")
    p.add_argument("--limit-test", type=positive_int, help="use only the first N test images")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the output folder if it holds an earlier run (never a folder nnumpy did not write)")


class HelpFormatter(argparse.HelpFormatter):
    """Every option's default in its help line (unless the help already
    says it, or there is none to say)."""

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        if (action.option_strings and default is not None and default is not False
                and default is not argparse.SUPPRESS and "default" not in text):
            text += " (default: %(default)s)"
        return text


class _RawDescription(HelpFormatter, argparse.RawDescriptionHelpFormatter):
    """The top-level help: the module docstring as written."""


class _Parser(argparse.ArgumentParser):
    """Sub-command parsers share the help formatter and the --debug option."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)
        self.add_argument("--debug", action="store_true", help="show the full traceback of an error")

    def error(self, message):
        """A bad argument: one line saying which and where the help is, exit code 2."""
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser():
    from .datasets import cli as data_cli
    from .nn import ACTIVATIONS

    p = argparse.ArgumentParser(prog="nnumpy", description=__doc__.replace("``", ""),
                                formatter_class=_RawDescription)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    g = sub.add_parser("gradcheck", help="check a model's hand-written gradients (an MLP, LeNet-5, ...)",
                       description="Check the gradients of a model (an MLP with any of nnumpy's activations, "
                                   "or one of nnumpy.models) with any of its losses (--loss): by central "
                                   "finite differences in float64 and, with --torch, against PyTorch's "
                                   "autograd on the same weights and batch.")
    from .models import MODELS
    g.add_argument("--model", default="mlp", choices=["mlp"] + list(MODELS),
                   help="mlp (layers from --arch, --activation) or a network of nnumpy.models (default: mlp)")
    g.add_argument("--arch", type=parse_arch, help="layer sizes of --model mlp (default: 784-100-200-50-10)")
    g.add_argument("--activation", choices=sorted(ACTIVATIONS), help="hidden activation of --model mlp "
                                                                        "(default: relu)")
    g.add_argument("--loss", default="cross_entropy", choices=list(LOSSES),
                   help="the loss to back-propagate from (nll after a LogSoftmax, bce after a Sigmoid; targets: "
                        "random classes, 0/1 labels or normal numbers, as the loss takes)")
    g.add_argument("--batch", type=positive_int, default=16, help="batch size")
    g.add_argument("--seed", type=seed, default=0, help="seed of the weights, inputs and checked entries")
    g.add_argument("--max-checks", type=positive_int, default=50,
                   help="finite differences: entries checked per tensor")
    g.add_argument("--no-fd", action="store_true", help="skip the finite-difference check")
    g.add_argument("--torch", action="store_true", help="also compare with PyTorch autograd")
    g.add_argument("--dtype", nargs="+", default=["float64"], choices=["float64", "float32"],
                   help="dtypes of the PyTorch comparison")
    g.set_defaults(run=_gradcheck)

    t = sub.add_parser("train", help="train one model (an MLP, LeNet-5, ...) and write a run folder",
                       description="Train a model (an MLP of the given sizes, or one of nnumpy.models: "
                                   "LeNet-5, a small CNN with batch norm) with cross-entropy on a "
                                   "training/validation split and "
                                   "write history (CSV, JSON), learning curves (PNG), the model (.npz), "
                                   "the configuration and the final metrics, test accuracy included.")
    from .models import MODELS
    t.add_argument("--model", default="mlp", choices=["mlp"] + list(MODELS),
                   help="mlp (layers from --arch, --activation), or: " + "; ".join(
                       f"{k}: {v[2]}" for k, v in MODELS.items()) + " (default: mlp)")
    t.add_argument("--arch", type=parse_arch, help="layer sizes of --model mlp (default: 784-100-10)")
    t.add_argument("--activation", choices=sorted(ACTIVATIONS), help="hidden activation of --model mlp "
                                                                        "(default: relu)")
    t.add_argument("--optimizer", default="sgd", choices=["sgd", "adam"], help="optimizer")
    t.add_argument("--lr", type=float, default=0.05, help="(initial) learning rate")
    t.add_argument("--momentum", type=float, default=0.9, help="SGD momentum (Nesterov when > 0)")
    t.add_argument("--schedule", default="cosine", choices=["cosine", "constant"],
                   help="learning rate: cosine annealing to 0 over the epochs (stepped after each epoch, so "
                        "the first epoch runs at --lr), or constant")
    t.add_argument("--epochs", type=positive_int, help="training epochs (default: 20; with --resume, the run's "
                                                     "own, or a larger total)")
    t.add_argument("--batch-size", type=positive_int, default=64, help="mini-batch size")
    t.add_argument("--val-fraction", type=float, default=0.1,
                   help="fraction of the training images held out for validation (stratified)")
    t.add_argument("--seed", type=seed, default=0, help="seed of the split, the weights and the batch order")
    t.add_argument("--out", help="run folder (default: runs/ARCH-ACTIVATION-lrLR, or runs/MODEL-lrLR)")
    t.add_argument("--resume", metavar="RUN",
                   help="continue the run folder RUN (stopped by Ctrl-C, or finished) from its checkpoint, "
                        "exactly as if it had never stopped, with its own configuration (--epochs may set a "
                        "larger total for a constant schedule); the result replaces RUN")
    _data_arguments(t)
    t.set_defaults(run=_train)

    w = sub.add_parser("sweep", help="train, tune and compare several MLPs (exercise 2)",
                       description="Train every variant of a grid, tune each variant's learning rate on "
                                   "the validation set, summarise (Markdown, CSV), pick the favourite by "
                                   "validation accuracy, test it once, and plot all learning curves. Trials "
                                   "run in local processes (--jobs) or on a Dask cluster (--scheduler). A "
                                   "stopped sweep resumes when the same command is run again.")
    src = w.add_mutually_exclusive_group(required=True)
    src.add_argument("--preset", choices=["practical"], help="practical: six MLPs, ReLU and sigmoid, batch 64")
    src.add_argument("--config", metavar="FILE.toml", help="a sweep file ([settings], [[variants]])")
    w.add_argument("--out", help="sweep folder (default: runs/sweep-PRESET, or runs/sweep-NAME for NAME.toml)")
    w.add_argument("--jobs", type=positive_int,
                   help="trials trained at once in local worker processes (default: 1)")
    w.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                   help="run the trials on the Dask cluster of this scheduler (pip install "
                        "\"nnumpy[distributed]\"; default: $NNUMPY_SCHEDULER if it is set and --jobs is not, "
                        "else local processes; 'local' forces them)")
    w.add_argument("--connect-timeout", type=seconds, default=10.0, metavar="SECONDS",
                   help="give up on a Dask scheduler that does not answer within this time")
    w.add_argument("--epochs", type=positive_int, help="override the final training epochs")
    w.add_argument("--tune-epochs", type=positive_int, help="override the epochs per learning-rate trial")
    w.add_argument("--seed", type=seed, help="override the sweep's seed")
    w.add_argument("--restart", action="store_true",
                   help="start over: replace the sweep in --out (only a folder nnumpy wrote) instead of resuming "
                        "it (--overwrite does the same)")
    w.add_argument("--resume", action="store_true",
                   help="insist on resuming (an error if --out holds no sweep); running the same command again "
                        "resumes anyway: finished trials are read back, the others trained")
    _data_arguments(w)
    w.set_defaults(run=_sweep)

    e = sub.add_parser("evaluate", help="test a run folder's model: confusion matrix, misclassified images")
    e.add_argument("run_dir", metavar="RUN", help="a folder written by 'nnumpy train' (or a sweep's variants/NAME)")
    e.set_defaults(run=_evaluate)

    for action, help_ in (("download", "fetch and verify datasets"), ("verify", "check local dataset copies")):
        d = sub.add_parser(action, help=help_, description=help_)
        data_cli.add_action_arguments(d, action)
        d.set_defaults(run=lambda a, action=action: data_cli.run_action(action, a))
    return p


def main(argv=None):
    """Run the command; a user error or an environment problem is one line on
    stderr (exit 2 for a bad argument or configuration, 1 for a run that
    failed), never a traceback; ``--debug`` shows the traceback too."""
    from .datasets import DatasetNotFoundError, DownloadError
    from .parallel import ClusterError, WorkerDied
    from .rundir import RunFolderError, RunFolderExistsError
    from .runconfig import ConfigError
    from .serialization import ModelFileError
    from .training import TrainingDivergedError
    args = build_parser().parse_args(argv)
    name = f"nnumpy {args.command}"

    def show(message, category, filename, lineno, file=None, line=None):   # a warning: one line too
        print(f"{name}: warning: {message}", file=sys.stderr)

    warnings.showwarning = show
    terminated = []

    def terminate(signum, frame):                # kill (SIGTERM) stops a run as Ctrl-C does: what
        terminated.append(signum)                # finished is written, nothing half-made is left
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, terminate)
    try:
        return args.run(args)
    except KeyboardInterrupt as e:
        print(f"{name}: " + ("terminated" if terminated else "interrupted") + (f": {e}" if str(e) else ""),
              file=sys.stderr)
        return 143 if terminated else 130
    except BrokenPipeError:                     # the reader went away (| head): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as e:
        if args.debug:
            raise
        if isinstance(e, (ConfigError, RunFolderExistsError)):
            code, text = 2, str(e)
        elif isinstance(e, (DatasetNotFoundError, DownloadError)):
            code, text = 1, e.message(cli=True)
        elif isinstance(e, (TrainingDivergedError, ModelFileError, RunFolderError, WorkerDied, ClusterError)):
            code, text = 1, str(e)
        elif isinstance(e, OSError):            # the environment: permissions, a full disk, a missing folder
            code, text = 1, _os_error(e)
        elif isinstance(e, MemoryError):
            code, text = 1, f"not enough memory ({e or 'the arrays asked for are too large'}); try smaller sizes"
        else:                                   # nnumpy's own bug: the traceback is for us
            raise
        print(f"{name}: error: {text}", file=sys.stderr)
        return code


def _os_error(e):
    where = f": {e.filename}" if getattr(e, "filename", None) else ""
    return f"{e.strerror or e}{where}"
