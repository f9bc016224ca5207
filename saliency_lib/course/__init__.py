"""The tutorial around the library: notebooks' helpers, the learner's edition, the install check, the widgets.

Imports any subpackage below it; nothing below imports it (the library never imports the widgets).

==================  =====================================================================================
``tutorial``        the notebooks' list, headers and set-up; hands on the exercises' checks
``exercises``       the exercises' checks: the stub's fallback, the comparison, known mistakes, one-line failures
``mistakes``        the known wrong answers of the exercises of notebooks 01, 02, 04 and 05, named by their checks
``loop_exercise``   notebook 03's exercise: the loop from the pieces, its known wrong loops, the learner's run
``learner_edition`` the notebooks without solutions (``python -m saliency_lib.course.learner_edition``)
``install_check``   is this machine ready? (``python -m saliency_lib.course.install_check``)
``widgets``         the panels of notebooks 01-06
==================  =====================================================================================
"""
