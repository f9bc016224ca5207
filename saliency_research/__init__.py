"""saliency_research: the research bench beside the tutorial's library, ``saliency_lib``.

Everything here measures the method at scale and writes the result files in ``benchmarks/results/`` that
``docs/results.md`` reports; no notebook needs it. It imports :mod:`saliency_lib` and is never imported by it.

==========================  ===================================================================================
``suites``, ``runner``      the evaluation suites (which datasets, images, methods and budgets) and their runner
``scoring``                 scoring the maps of a suite, sharded over torchrun's ranks
``suite_results``           the result files of a suite: records, settings, machine
``reports``                 summaries with 95% CIs, paired verdicts and markdown tables of the result files
``budget_study``            OISE and RISE against the number of model calls; OISE's settings sweep
``budget_report``           the budget curve's tables and figure, with each post-processing as a row
``boxes_data``,             the paper's experiment on your own images and boxes (``evaluate --suite boxes``)
``boxes_suite``,
``box_annotations``
``reconstruction_experiment``  Part B over a test set: regenerate the salient region, count agreement
``distributed``             splitting work over torchrun's processes, resumable
``image_folders``           maps of every image in a folder (``explain-folder``)
``cli``                     ``python -m saliency_research COMMAND``
==========================  ===================================================================================
"""

from __future__ import annotations

__version__ = "0.1.0"
