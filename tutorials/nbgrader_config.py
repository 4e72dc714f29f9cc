# nbgrader settings for the nnumpy tutorials: copy this file into your course
# directory (next to source/), see tutorials/README.md.
c = get_config()  # noqa: F821  (nbgrader provides get_config)

# What a student sees in place of a solution region (nbgrader's defaults, spelled out).
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# The notebooks load MNIST and train small networks: allow a generous time per cell when
# autograding.  For a quick grading pass set NNUMPY_TUTORIAL_FAST=1 in the environment of
# `nbgrader autograde` (the notebooks then use small data subsets and few epochs).
c.Execute.timeout = 1800
