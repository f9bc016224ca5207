"""Files and models: what the library reads and writes, and the classifiers it explains.

Imports only :mod:`saliency_lib.method` (and :mod:`saliency_lib.plots`).

=================  ==========================================================================================
``paths``          where the checkout's folders are (the repository root, ``data/``, ``benchmarks/results``)
``assets``         the shipped files in ``data/``: manifest, hashes, build and verify
``data``           Fashion-MNIST and the sample photographs
``models``         the classifiers with their input conventions (:class:`~saliency_lib.io.models.InputSpec`)
``runtime``        ONNX Runtime wrappers: the fast black box for OISE and RISE
``uploads``        checked decoding of an uploaded or given image file
``image_files``    a map of one image file, or of every image in a folder (``explain``, ``explain-folder``)
``distributed``    a run split into seeded blocks over torchrun's processes, its files merged, resumable
=================  ==========================================================================================
"""
