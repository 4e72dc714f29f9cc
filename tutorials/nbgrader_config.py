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

# Feedback for students: nbgrader's default feedback shows the hidden tests' source (its issue #917), and a
# failed check's traceback shows the lines around the failure, hidden ones included.  Remove the first, and
# cut each traceback down to its last line (the error and the check's message, which says what is wrong).
from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor, Preprocessor  # noqa: E402
from nbgrader.preprocessors import ClearHiddenTests, GetGrades  # noqa: E402


class ErrorMessageOnly(Preprocessor):
    """An error output keeps its type and message, not its traceback."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.enabled = True              # (an nbconvert preprocessor is off unless enabled)

    def preprocess_cell(self, cell, resources, index):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                out["traceback"] = [f"{out.get('ename')}: {out.get('evalue')}"]
        return cell, resources


c.GenerateFeedback.preprocessors = [GetGrades, ClearHiddenTests, ErrorMessageOnly, CSSHTMLHeaderPreprocessor]
