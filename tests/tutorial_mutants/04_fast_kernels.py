"""Deliberately broken answers for tutorials/04_fast_kernels.ipynb: each must make a check cell
fail, naming what is wrong (see tests/test_tutorial_checks.py)."""
MUTANTS = {
    "epoch_timing": [
        ("np.random.default_rng(0).permutation(n)", "np.random.default_rng().permutation(n)", "the numba model's"),
        ("model.backward(crit.backward()); opt.step()", "model.backward(crit.backward())", "did not change"),
    ],
}
