"""The planning cascade: LocalizerIQ-Net, Coverage-Net (and later Orientation-Net),
their training data, training, evaluation and inference."""
