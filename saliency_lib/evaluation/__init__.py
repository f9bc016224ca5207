"""The evaluation: metrics, baselines, datasets with ground truth, the suites that run them, and their reports.

Imports :mod:`saliency_lib.method` and :mod:`saliency_lib.io`.

====================  ======================================================================================
``metrics``           deletion and insertion, pointing game, IoU, energy in the box, rank agreement
``baselines``         Grad-CAM, Occlusion, Integrated Gradients, gradients, LIME, random; ``attribute``
``datasets``          the data with ground truth (planted evidence, cluttered Fashion-MNIST, photographs)
``suites``            what each suite (quick, full, paper) runs: :class:`DatasetPlan`, budgets, settings
``scoring``           one method on one dataset, in one process or sharded
``runner``            ``run_suite``: every method on every dataset of a suite (``evaluate``)
``suite_results``     what a suite writes: settings, machine, records merged under a lock
``budget_study``      the budget curve and OISE's settings sweep (``saliency_research/bench/paper.py``)
``reports``           confidence intervals, markdown tables, result files
``box_annotations``   object boxes from Pascal VOC XML or Open Images CSV
``boxes_data``        the model and the photographs with boxes for the boxes suite
``boxes_suite``       the paper's experiment on your photographs with boxes (``evaluate --suite boxes``)
====================  ======================================================================================
"""
