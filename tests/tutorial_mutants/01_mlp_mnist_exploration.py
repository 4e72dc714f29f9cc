"""Deliberately broken answers for tutorials/01_mlp_mnist_exploration.ipynb: each must make a check cell
fail, naming what is wrong (see tests/test_tutorial_checks.py)."""
MUTANTS = {
    "split": [
        ("stratify=True", "stratify=False", "class balance"),
        ("val_fraction=0.1", "val_fraction=0.2", "validation part has"),
    ],
    "train_variant": [
        ("T_max=epochs", "T_max=10 * epochs", "history.lr"),
        ("epochs=epochs, batch_size=64", "epochs=1, batch_size=64", "epochs, expected 2"),
        ("lr=lr, momentum", "lr=lr / 1000, momentum", "0.001 times the expected"),
        ("(x_train, y_train), val=", "(x_train, np.roll(y_train, 1)), val=", "validation accuracy"),
    ],
    "tune_variants": [
        ("max(trials, key=trials.get)", "min(trials, key=trials.get)", "kept learning rate"),
        ("best_lr, EPOCHS)", "best_lr, TUNE_EPOCHS)", "expected EPOCHS"),
    ],
    "favourite": [
        ("fav = max(results", "fav = min(results", "best validation accuracy"),
        ("nnp.evaluate(fav[4], x_test, y_test)", "nnp.evaluate(fav[4], x_val, y_val)", "test_acc"),
    ],
}
