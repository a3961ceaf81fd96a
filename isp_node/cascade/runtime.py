"""TensorFlow set-up for this project's CPUs: oneDNN on, two intra-op threads, no XLA,
and numpy's BLAS on one thread.

Import TensorFlow only through `tensorflow()` so the environment is set before
the first import (oneDNN makes 3D convolutions several times faster here). BLAS
threads keep spinning after a matrix product and take the cores the networks'
threads need next: stages 1-2 of a 3D scout took 162 ms with two BLAS threads
and 138 ms with one (`isp_node.pipeline.image_input`'s products are the BLAS work).
"""

import os
from functools import lru_cache

from threadpoolctl import threadpool_limits

INTRA_OP_THREADS = 2


@lru_cache(maxsize=1)
def tensorflow():
    """The configured `tensorflow` module."""
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(INTRA_OP_THREADS)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    tf.config.optimizer.set_jit(False)
    threadpool_limits(1, user_api="blas")
    return tf


def keras():
    """Keras, after TensorFlow has been configured."""
    tensorflow()
    import keras as k

    return k
