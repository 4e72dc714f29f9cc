"""Figures of training runs, drawn off-screen (matplotlib's Agg backend).

Every figure has a fixed size in pixels (``FIG_PX``) so that reports look
alike; axes are labelled with their units and every line has a legend entry.
"""
from __future__ import annotations

import numpy as np

__all__ = ["learning_curves", "compare_runs", "confusion_matrix_figure", "misclassified_grid", "FIG_PX"]

FIG_PX = {"curves": (1200, 450), "compare": (1200, 600), "confusion": (700, 600), "grid": (1000, 560)}
_DPI = 100


def _pyplot():
    import matplotlib
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    return plt


def _figure(plt, kind, **kw):
    w, h = FIG_PX[kind]
    return plt.subplots(figsize=(w / _DPI, h / _DPI), dpi=_DPI, **kw)


def _integer_epochs(*axes):
    from matplotlib.ticker import MaxNLocator
    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _save(plt, fig, path):
    fig.savefig(path, dpi=_DPI)
    plt.close(fig)
    return path


def learning_curves(history, path, title=""):
    """Cost and accuracy against epoch, training and validation, side by side."""
    plt = _pyplot()
    fig, (ax_loss, ax_acc) = _figure(plt, "curves", ncols=2)
    ep = history["epoch"]
    ax_loss.plot(ep, history["train_loss"], "o-", label="training")
    ax_loss.plot(ep, history["val_loss"], "s--", label="validation")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("cross-entropy loss (nats per sample)")
    ax_loss.set_title("cost")
    ax_acc.plot(ep, 100 * np.asarray(history["train_acc"]), "o-", label="training")
    ax_acc.plot(ep, 100 * np.asarray(history["val_acc"]), "s--", label="validation")
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel("accuracy (%)")
    ax_acc.set_title("accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
    _integer_epochs(ax_loss, ax_acc)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return _save(plt, fig, path)


def compare_runs(histories, path, title=""):
    """Validation accuracy and training/validation loss of several runs: {label: history}.

    One colour per run, named once in a legend below both plots (readable
    for a dozen runs); line style tells training (solid) from validation
    (dashed)."""
    plt = _pyplot()
    from matplotlib.lines import Line2D
    fig, (ax_acc, ax_loss) = _figure(plt, "compare", ncols=2)
    handles = []
    for i, (label, h) in enumerate(histories.items()):
        color = f"C{i % 10}"
        handles += ax_acc.plot(h["epoch"], 100 * np.asarray(h["val_acc"]), "-", color=color, label=label)
        ax_loss.plot(h["epoch"], h["train_loss"], "-", color=color)
        ax_loss.plot(h["epoch"], h["val_loss"], "--", color=color)
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel("validation accuracy (%)")
    ax_acc.set_title("validation accuracy")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("cross-entropy loss (nats per sample)")
    ax_loss.set_title("cost")
    ax_loss.set_yscale("log")
    ax_loss.legend([Line2D([], [], color="0.3", ls="-"), Line2D([], [], color="0.3", ls="--")],
                   ["training", "validation"], fontsize=10, loc="upper right")
    for ax in (ax_acc, ax_loss):
        ax.grid(alpha=0.3)
    _integer_epochs(ax_acc, ax_loss)
    if title:
        fig.suptitle(title)
    ncol = min(len(handles), 3)
    fig.legend(handles, [hd.get_label() for hd in handles], loc="lower center", ncol=max(ncol, 1), fontsize=10,
               frameon=False)
    rows = -(-len(handles) // max(ncol, 1))
    fig.tight_layout(rect=(0, min(0.03 + 0.04 * rows, 0.45), 1, 1))
    return _save(plt, fig, path)


def confusion_matrix_figure(cm, classes, path, title="confusion matrix (test set)"):
    """cm[i, j]: test samples of true class i predicted as j, with counts in the cells."""
    plt = _pyplot()
    fig, ax = _figure(plt, "confusion")
    im = ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(len(classes)))
    ax.set_yticks(range(len(classes)))
    ax.set_xticklabels(classes, rotation=45 if max(len(c) for c in classes) > 2 else 0, fontsize=8)
    ax.set_yticklabels(classes, fontsize=8)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title)
    high = cm.max() / 2 if cm.size else 0
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=7,
                    color="white" if cm[i, j] > high else "black")
    fig.colorbar(im, ax=ax, label="number of test images")
    fig.tight_layout()
    return _save(plt, fig, path)


def misclassified_grid(images, predicted, true, classes, path, cols=10, rows=4):
    """Up to rows * cols misclassified images (N, 28, 28), each titled
    "predicted / true"."""
    plt = _pyplot()
    fig, axes = _figure(plt, "grid", nrows=rows, ncols=cols)
    for k, ax in enumerate(np.asarray(axes).ravel()):
        ax.axis("off")
        if k < len(images):
            ax.imshow(images[k], cmap="gray_r", vmin=0, vmax=1 if images.dtype.kind == "f" else 255)
            ax.set_title(f"{classes[predicted[k]]} / {classes[true[k]]}", fontsize=7,
                         color="firebrick")
    fig.suptitle("misclassified test images: predicted / true"
                 + ("" if len(images) else " (none)"))
    fig.tight_layout()
    return _save(plt, fig, path)
