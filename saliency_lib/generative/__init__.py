"""Part B: regenerating the salient region with a GAN.

Imports :mod:`saliency_lib.method`, :mod:`saliency_lib.io` and :mod:`saliency_lib.evaluation` (the datasets'
references and the reports' confidence intervals).

=============================  ===========================================================================
``gan``                        our small DCGAN for Fashion-MNIST (generator, discriminator, training)
``reconstruct``                semantic inpainting of a region: ``salient_region``, ``inpaint``, ``agreement``
``reconstruction_experiment``  the experiment of ``python -m saliency_research reconstruct``
=============================  ===========================================================================
"""
