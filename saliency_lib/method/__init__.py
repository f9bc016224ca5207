"""The method: OISE and RISE, the pieces of a mask, their results, and what every other part shares.

The bottom of the package: every other subpackage imports from here, and nothing here imports them.

=================  ==========================================================================================
``oise_method``    the paper's method: ``oise(model, images)`` and ``OISE(model).attribute(...)``
``rise_method``    its closest relative: ``rise(...)`` and ``RISE``
``masks``          the pieces of one step: grid, upsampling, shifted crop, masked image, update, post-processing
``results``        :class:`SaliencyResult` (what every method returns) and the step recorder
``core``           what the methods share: model calls in batches, probabilities, targets, references, seeds
``threads``        the one place that sets threads for the black box (the model's budget, the mask work's one)
``_checks``        the shared argument checks (private to the library)
=================  ==========================================================================================
"""
