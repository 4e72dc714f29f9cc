"""Deliberately broken answers for tutorials/02_backprop_by_hand.ipynb: each must make a check cell fail, naming what is wrong."""
MUTANTS = {
    # grade_id of a solution cell: [(text in that cell's solution, replacement, text the failing check's message must contain), ...]
    "linear_layer": [
        ("y = x @ W.T + b ", "y = x @ W.T ", "y is wrong"),                          # forgot the bias
        ("dW = dy.T @ x", "dW = x.T @ dy", "dW has shape (4, 3), expected (3, 4) (the transpose"),
        ("db = dy.sum(axis=0)", "db = dy.sum(axis=1)", "db has shape (5,), expected (3,)"),   # summed over the wrong axis
        ("    return dx, dW, db", "    dx, dW, db", "linear_backward returned None"),                # a forgotten return
    ],
    "activations": [
        ("return np.where(mask, z, 0.0), mask", "return np.where(mask, z, 0.0), z", "relu dz"),   # cached the input, not the mask
        ("return dy * y * (1.0 - y)", "return dy * y * (1.0 + y)", "sigmoid dz"),                # sigma' = y (1 + y)
        ("    return y, y", "    return y, z", "sigmoid dz"),                                    # cached the input, not the output
    ],
    "cross_entropy": [
        ("return dz / len(t)", "return dz", "Every entry is 7 times"),             # missing 1/N
        ("dz[np.arange(len(t)), t] -= 1", "pass", "dz is wrong"),                                # forgot to subtract the one-hot
        ("shifted = z - z.max(axis=1, keepdims=True)", "shifted = z", "loss of logits of size 1e4 has 1 non-finite"),
    ],
    "mlp": [
        ("if i < len(self.W) - 1:", "if True:", "logits (relu"),                                 # an activation after the last layer too
        ("dy = self.act[1](dy, act_cache)", "pass", "dWs[1] (relu"),                             # forgot the activation's backward
    ],
    "train_epoch": [
        ("idx = order[s:s + batch]", "idx = np.arange(len(x))[s:s + batch]", "W0 after epoch 1"),   # no shuffling
        ("velocity[2 * i + 1] = mu * velocity[2 * i + 1] + db", "velocity[2 * i + 1] = db",
         "after epoch 1 (batch 4, mu 0.9) is wrong"),   # no momentum on the biases (W0 then differs too)
        ("total += loss * len(idx)", "total += loss", "the mean loss returned by train_epoch"),     # mean of batch means / N
    ],
}
