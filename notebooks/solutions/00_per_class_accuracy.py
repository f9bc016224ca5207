# Solution to notebook 00's exercise: accuracy per class, in batched tensor operations.
import torch


def per_class_accuracy(model, images, labels, n_classes=10):
    """Accuracy of `model` on each class: a float tensor (n_classes,)."""
    with torch.no_grad():
        # In chunks of 500 images: one call on all 3,000 would hold 0.5 GB of activations (Binder has 2 GB).
        predictions = torch.cat([model(part).argmax(dim=1) for part in images.split(500)])
    correct = (predictions == labels).float()
    # Sum the hits and the counts per class in one batched call each: no Python loop over images.
    hits = torch.zeros(n_classes).index_add_(0, labels, correct)
    counts = torch.bincount(labels, minlength=n_classes).float()
    return hits / counts
