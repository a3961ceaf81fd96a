"""Loading trained networks and calling them warm, as the worker does."""

from functools import partial
from pathlib import Path

import numpy as np

from isp_node.cascade.runtime import keras, tensorflow


def load_model(path: Path):
    """A trained model, ready for inference (custom losses registered, not compiled)."""
    from isp_node.cascade.training import _register

    _register()
    return keras().models.load_model(path, compile=False)


def warm_function(model, outputs: tuple[str, ...] = ()):
    """The model, its batch normalisations folded, as a tf.function traced once for any
    batch size (model.predict adds ~0.1 s a call; a new trace per batch size would add more);
    with `outputs`, it returns those layers' outputs instead of the model's (a tuple: the
    heads of Orientation-Net apart, without the final concatenation that the caller would
    only split again: a few ms of copying a call)."""
    tf = tensorflow()
    model = fold_batch_norm(model)
    if outputs:
        model = keras().Model(model.inputs, [model.get_layer(name).output for name in outputs])
    spec = tf.TensorSpec((None, *model.input_shape[1:]), tf.float32)
    # a partial, not a lambda: TensorFlow counts traces per function code, so the node's
    # several warm functions, each traced once, would look like one function retraced
    return tf.function(partial(_inference, model), input_signature=[spec])


def _inference(model, x):
    return model(x, training=False)


def fold_batch_norm(model):
    """The same function for inference with every batch normalisation that follows a
    convolution folded into it: one convolution with a bias instead of three operations
    (the 3D U-Nets here, called alone, run about a fifth faster). Outputs equal within float rounding."""
    k = keras()
    folded = {}  # convolution name -> the batch normalisation it feeds
    for layer in model.layers:
        if isinstance(layer, k.layers.BatchNormalization):
            producer = layer.input._keras_history[0]
            if type(producer) in (k.layers.Conv2D, k.layers.Conv3D) and not producer.use_bias \
                    and len(producer._outbound_nodes) == 1:
                folded[producer.name] = layer
    if not folded:
        return model
    norms = {norm.name for norm in folded.values()}

    def clone(layer):
        if layer.name in norms:
            return k.layers.Identity(name=layer.name)
        config = layer.get_config()
        if layer.name in folded:
            config["use_bias"] = True
        return layer.__class__.from_config(config)

    def call(layer, *args, **kwargs):  # the identity takes no batch-norm arguments (mask)
        return layer(*args) if layer.name in norms else layer(*args, **kwargs)

    out = k.models.clone_model(model, clone_function=clone, call_function=call)
    for layer in model.layers:
        if layer.name in folded:
            norm = folded[layer.name]
            scale = 1.0 / np.sqrt(norm.moving_variance.numpy() + norm.epsilon)
            if norm.gamma is not None:
                scale = scale * norm.gamma.numpy()
            shift = -norm.moving_mean.numpy() * scale
            if norm.beta is not None:
                shift = shift + norm.beta.numpy()
            out.get_layer(layer.name).set_weights([layer.kernel.numpy() * scale, shift])
        elif layer.name not in norms and layer.weights:
            out.get_layer(layer.name).set_weights(layer.get_weights())
    return out
