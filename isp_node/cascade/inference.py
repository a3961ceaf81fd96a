"""Loading trained networks and calling them warm, as the worker does."""

from pathlib import Path

from isp_node.cascade.runtime import keras, tensorflow


def load_model(path: Path):
    """A trained model, ready for inference (custom losses registered, not compiled)."""
    from isp_node.cascade.training import _register

    _register()
    return keras().models.load_model(path, compile=False)


def warm_function(model):
    """The model as a tf.function traced once for any batch size (model.predict adds
    ~0.1 s a call; a new trace per batch size would add more)."""
    tf = tensorflow()
    spec = tf.TensorSpec((None, *model.input_shape[1:]), tf.float32)
    return tf.function(lambda x: model(x, training=False), input_signature=[spec])
