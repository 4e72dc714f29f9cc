"""Deliberately broken answers for tutorials/05_autograd.ipynb: each must make a check cell fail, naming what is
wrong (see tests/test_tutorial_checks.py)."""
MUTANTS = {
    # grade_id of a solution cell: [(text in that cell's solution, replacement, text the failing check's message
    # must contain), ...]
    "broadcast_ops": [
        # the gradient of b + a passed on as it is: the sum over the rows that b was broadcast to is forgotten
        ("return unbroadcast(g, a.value.shape), unbroadcast(g, b.value.shape)", "return g, g",
         "d(a + b)/db for b of shape (3,) has shape (4, 3), expected (3,)"),
        # the mean over the broadcast rows instead of the sum: every entry 1/N of the right one
        ("g = g.sum(axis=0)", "g = g.mean(axis=0)", "0.25 times the expected"),
        # the summed axis of length 1 dropped: (3,) where b has shape (1, 3)
        ("g = g.sum(axis=axis, keepdims=True)", "g = g.sum(axis=axis)", "b of shape (1, 3) has shape (3,)"),
        # the product in the wrong order: the transpose of db
        ("db = a.value.T @ g", "db = g.T @ a.value", "d(a @ b)/db has shape (3, 5), expected (5, 3) (the transpose"),
        # the two gradients returned in the wrong order
        ("return da, db", "return db, da", "d(a @ b)/da has shape (5, 3), expected (4, 5)"),
    ],
    "backward_sweep": [
        # a parent's gradient assigned instead of added: the second use of h overwrites the first share
        ("parent.grad = g if parent.grad is None else parent.grad + g", "parent.grad = g",
         "x.grad (h = tanh(x) used twice in h + h) is wrong"),
        # the nodes visited in forward (topological) order: each passes on a gradient that has not arrived yet
        ("for node in reversed(order):", "for node in order:", "is None after backward"),
        # the root not seeded with dL/dL = 1: nothing to propagate
        ("root.grad = np.ones_like(root.value)", "pass", "is None after backward"),
        # a node appended when first reached (pre-order), before its parents
        ("stack.append((node, True))", "order.append(node)", "before its parent"),
        # visited nodes never recorded: a node reached along two paths is listed (and swept) twice
        ("visited.add(node)", "pass", "more than once"),
        # interior gradients not reset: a second sweep adds to the first one's (caught by the hidden test)
        ("node.grad = None", "pass", "after calling backward twice"),
    ],
}
