"""The bench's measurements: each module is a command that writes its results to ``benchmarks/results/``.

Run one as ``python -m saliency_research.bench.<name> --help`` from a checkout (the results and ``data/`` live
there): ``threads`` and ``speed`` (time per model call), ``notebooks`` (each notebook's time and memory, and
re-executing them), ``paper`` (the budget curve, OISE's settings), ``protocol_choices`` (the protocol table),
``authors_crosscheck`` with ``authors_reference`` (our OISE and RISE against the authors' code), ``kernel_spread``
(the golden tests' tolerances under other CPU kernels) and ``sync_docs`` (the numbers cog writes into the docs).
"""
