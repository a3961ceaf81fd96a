"""Model builders of the cascade, in the style of the Keras examples: short functions."""

from isp_node.cascade.runtime import keras

IQ_CLASSES = ("anatomy", "artifact", "irrelevant")


def build_iq_net(size: int = 64, width: int = 16) -> "keras.Model":
    """LocalizerIQ-Net: five conv blocks, each halving the image (64 -> 2), then a
    softmax over anatomy / artifact / irrelevant for one localizer image."""
    k = keras()
    inputs = k.Input((size, size, 1), name="image")
    x = inputs
    for i, filters in enumerate((width, 2 * width, 4 * width, 4 * width, 8 * width)):
        x = k.layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"conv{i + 1}")(x)
        x = k.layers.BatchNormalization(name=f"bn{i + 1}")(x)
        x = k.layers.ReLU()(x)
        x = k.layers.MaxPooling2D(2)(x)
    x = k.layers.GlobalAveragePooling2D()(x)
    x = k.layers.Dropout(0.2)(x)
    outputs = k.layers.Dense(len(IQ_CLASSES), activation="softmax", name="classes")(x)
    return k.Model(inputs, outputs, name="localizer_iq_net")


def _conv_block(k, x, filters: int, name: str):
    for j in range(2):
        x = k.layers.Conv3D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv{j}")(x)
        x = k.layers.BatchNormalization(name=f"{name}_bn{j}")(x)
        x = k.layers.ReLU()(x)
    return x


def _unet(k, inputs, base: int, levels: int):
    """A 3D U-Net body: `levels` poolings, filters doubling from `base`, skip connections."""
    skips, x = [], inputs
    for level in range(levels):
        x = _conv_block(k, x, base * 2**level, f"down{level}")
        skips.append(x)
        x = k.layers.MaxPooling3D(2)(x)
    x = _conv_block(k, x, base * 2**levels, "bottom")
    for level in reversed(range(levels)):
        x = k.layers.Conv3DTranspose(base * 2**level, 2, strides=2, name=f"up{level}")(x)
        x = k.layers.Concatenate()([x, skips[level]])
        x = _conv_block(k, x, base * 2**level, f"dec{level}")
    return x


def build_coverage_net(shape: tuple[int, int, int] = (64, 64, 64), base: int = 8,
                       levels: int = 3) -> "keras.Model":
    """Coverage-Net: a 3D U-Net on the localizer volume (intensity, coverage) giving
    the probability that each voxel is brain."""
    k = keras()
    inputs = k.Input((*shape, 2), name="localizer")
    outputs = k.layers.Conv3D(1, 1, activation="sigmoid", name="brain")(_unet(k, inputs, base, levels))
    return k.Model(inputs, outputs, name="coverage_net")


def build_orientation_net(planes: int, shape: tuple[int, int, int] = (64, 64, 64), base: int = 8,
                          levels: int = 3, landmarks: int = 0) -> "keras.Model":
    """Orientation-Net: a 3D U-Net on the brain-centred localizer volume giving, per plane,
    the signed distance to it (tanh, in units of the learnt range) and a heat blob at its
    centre (sigmoid); the 2 x `planes` channels are distances first. With `landmarks`, a
    second output: one logit map per landmark, whose softmax over the grid places it."""
    k = keras()
    inputs = k.Input((*shape, 2), name="localizer")
    x = _unet(k, inputs, base, levels)
    distance = k.layers.Conv3D(planes, 1, activation="tanh", name="distance")(x)
    heat = k.layers.Conv3D(planes, 1, activation="sigmoid", name="heat")(x)
    outputs = k.layers.Concatenate(name="planes")([distance, heat])
    if landmarks:
        outputs = [outputs, _landmark_head(k, x, landmarks, base)]
    return k.Model(inputs, outputs, name="orientation_net")


def _landmark_head(k, x, landmarks: int, base: int):
    """One logit map per landmark (zero at the start: a uniform softmax) after a 3x3x3 conv."""
    points = k.layers.Conv3D(2 * base, 3, padding="same", activation="relu", name="lm_conv")(x)
    return k.layers.Conv3D(landmarks, 1, name="landmarks", kernel_initializer="zeros")(points)


def build_commissure_net(landmarks: int, shape: tuple[int, int, int] = (48, 48, 48),
                         base: int = 8, levels: int = 3) -> "keras.Model":
    """The commissure look: Orientation-Net's U-Net body with its landmark head alone, one
    logit map per landmark on a small fine grid, whose softmax places it."""
    k = keras()
    inputs = k.Input((*shape, 2), name="localizer")
    outputs = _landmark_head(k, _unet(k, inputs, base, levels), landmarks, base)
    return k.Model(inputs, outputs, name="commissure_net")
