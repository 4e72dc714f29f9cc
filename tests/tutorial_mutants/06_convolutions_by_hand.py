"""Deliberately broken answers for tutorials/06_convolutions_by_hand.ipynb: each must make a check cell fail, naming what is wrong."""
MUTANTS = {
    # grade_id of a solution cell: [(text in that cell's solution, replacement, text the failing check's message must contain), ...]
    "conv2d_backward": [
        ("dW[o] += dy[n, o, i, j]", "dW[o] = dy[n, o, i, j]", "dW (x (2, 3, 7, 6)"),            # the kernel gradient not accumulated
        ("dxp[n, :, rows, cols] += dy", "dxp[n, :, rows, cols] = dy", "dx (x (2, 3, 7, 6)"),   # overlapping windows overwrite
        ("return dxp[:, :, padding:padding + height, padding:padding + width], dW, db",
         "return dxp[:, :, :height, :width], dW, db", "dx (x (2, 3, 8, 7), 3x3 kernel, stride 2, padding 1)"),   # wrong crop
    ],
    "maxpool_backward": [
        ("plane = dx[n, c].reshape(-1)", "plane = dx[n, c].flatten()", "It is all zeros"),      # a copy, not a view
        ("plane[idx[n, c, i, j]] += dy[n, c, i, j]", "plane[idx[n, c, i, j]] = dy[n, c, i, j]",
         "dx (3x3 windows, stride 2)"),                                                         # overlaps not summed
        ("plane[idx[n, c, i, j]] += dy[n, c, i, j]", "plane[idx[n, c, i, j]] += 1.0", "dx (2x2 windows, stride 2)"),   # no chain rule
    ],
    "batchnorm_backward": [
        ("(dy - mean_dy - xhat * mean_dy_xhat)", "(dy - xhat * mean_dy_xhat)", "dx (x (8, 5))"),   # missing the mean of dy
        ("(dy - mean_dy - xhat * mean_dy_xhat)", "(dy - mean_dy)", "dx (x (8, 5))"),               # missing the xhat term
        ("dgamma = (dy * xhat).sum(axis=axes)", "dgamma = (dy * xhat).mean(axis=axes)", "dgamma (x (8, 5))"),
    ],
}
