"""Deliberately broken answers for tutorials/00_modules_and_objects.ipynb: each must make a check cell fail,
naming what is wrong."""
MUTANTS = {
    # grade_id of a solution cell: [(text in that cell's solution, replacement, text the failing check's message
    # must contain), ...]
    "scale_layer": [
        # dx forgets alpha (alpha is set away from 1 by the check, so this cannot pass by luck)
        ("return dy * self.alpha.data", "return dy", "dx is wrong"),
        # the mean over the batch instead of the sum: every entry 1/N of the right one
        ("(dy * x).sum(axis=0)", "(dy * x).mean(axis=0)", "0.2 times the expected"),
        # the gradient assigned instead of added: one pass is right, two are not
        ("self.alpha.grad += (dy * x).sum(axis=0)", "self.alpha.grad = (dy * x).sum(axis=0)",
         "must ADD into self.alpha.grad"),
        # a wrong sign in dalpha
        ("self.alpha.grad += (dy * x)", "self.alpha.grad -= (dy * x)", "opposite sign"),
        # the cache read without being consumed: a second backward silently runs
        ('x = self._take_cache()["x"]', 'x = self._cache["x"]', "a second backward without a new forward ran"),
        # forward keeps x in an attribute instead of the cache: backward's _take_cache finds nothing
        ("self._save(x=x)", "self.x = x", "forward must keep x with self._save(x=x)"),
        # dx computed in place in the caller's dy
        ("return dy * self.alpha.data", "dy *= self.alpha.data\n        return dy", "backward changed dy in place"),
        # alpha created without the dtype argument: float64 whatever the layer's dtype
        ("np.ones(features, dtype=dtype)", "np.ones(features)", "create it with the given dtype"),
    ],
    "softplus_layer": [
        # the textbook formula: exp(1000) = inf
        ("np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))", "np.log(1 + np.exp(x))", "exp(x) overflows there"),
        # the stable form but with log(1 + t): softplus(-40) = 4.25e-18 comes out as 0
        ("np.log1p(np.exp(-np.abs(x)))", "np.log(1 + np.exp(-np.abs(x)))", "softplus(-40) is wrong"),
        # the textbook derivative: inf / inf = nan for large x
        ("np.where(x >= 0, 1, t) / (1 + t)", "np.exp(x) / (1 + np.exp(x))", "is inf / inf there"),
        # the two branches of the stable sigmoid swapped: sigmoid(-x)
        ("np.where(x >= 0, 1, t)", "np.where(x >= 0, t, 1)", "dx is wrong"),
        # backward returns dy instead of dx
        ("return dy * sigmoid", "return dy", "dx is wrong"),
    ],
}
