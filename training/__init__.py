"""Training: the supervised student recipe (and, later, the GAN teacher)."""
