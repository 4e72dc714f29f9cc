"""Deliberately broken answers for tutorials/03_review_questions.ipynb: each must make a check cell
fail, naming what is wrong (see tests/test_tutorial_checks.py)."""
MUTANTS = {
    "count_parameters": [
        ("m * (k + 1)", "m * k", "count_parameters([784, 100, 200, 50, 10])"),
        ("return sum(", "return len(sizes) + sum(", "count_parameters"),
    ],
    "collapse": [
        ("b = W3 @ (W2 @ b1 + b2) + b3", "b = W3 @ W2 @ b1 + b3", "x @ W.T + b (the single map)"),
        ("W = W3 @ W2 @ W1", "W = (W3 @ W2 @ W1).T", "W has shape (784, 10)"),
    ],
    "central_differences": [
        ("(up - down) / (2 * eps)", "(up - down) / eps", "2 times the expected"),
        ("(up - down) / (2 * eps)", "(down - up) / (2 * eps)", "opposite sign"),
    ],
}
