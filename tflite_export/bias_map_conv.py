"""`Conv2DWithBiasMap`: a Conv2D whose bias may differ at each output position.

Surgery needs it to remove a constant input channel `c` (value `v`) from a
'same'-padded convolution exactly. Inside the image the channel adds
`v * sum_{i,j} K[i, j, c, :]` to every output, but near the border some taps read
the zero padding instead, so the contribution is position-dependent:

    M[y, x, :] = sum_{(i, j) : tap inside the image} v * K[i, j, c, :]
               = conv2d(v * ones(H, W, 1), K[:, :, c:c+1, :], padding='same')[y, x, :]

The layer adds the constant map `M` (shape `(H_out, W_out, filters)`) to the
convolution before the activation, so removing the channel changes no output.
In TFLite it becomes CONV_2D followed by ADD (with the fused activation).
"""

import tensorflow as tf

from mcmia_tf.compat import keras

__all__ = ["Conv2DWithBiasMap"]


@keras.utils.register_keras_serializable(package="mcmia_tf")
class Conv2DWithBiasMap(keras.layers.Conv2D):
    """`Conv2D` plus a constant, non-trainable per-position bias map.

    Args:
      bias_map_shape: `(output_height, output_width, filters)`.
      **kwargs: `keras.layers.Conv2D` arguments (channels_last, groups=1).
    """

    def __init__(self, *args, bias_map_shape=None, **kwargs):
        super().__init__(*args, **kwargs)
        if bias_map_shape is None or len(bias_map_shape) != 3:
            raise ValueError("Invalid value for argument `bias_map_shape`. Expected "
                             "(output_height, output_width, filters). Received: "
                             f"bias_map_shape={bias_map_shape!r}")
        if self.data_format != "channels_last" or self.groups != 1:
            raise ValueError("Conv2DWithBiasMap supports channels_last, groups=1 only. "
                             f"Received: data_format={self.data_format!r}, "
                             f"groups={self.groups}")
        self.bias_map_shape = tuple(int(d) for d in bias_map_shape)

    def build(self, input_shape):
        super().build(input_shape)
        self.bias_map = self.add_weight(name="bias_map", shape=self.bias_map_shape,
                                        initializer="zeros", trainable=False)

    def call(self, inputs):
        outputs = self.convolution_op(inputs, self.kernel)
        if self.use_bias:
            outputs = tf.nn.bias_add(outputs, self.bias)
        outputs = outputs + self.bias_map
        if self.activation is not None:
            return self.activation(outputs)
        return outputs

    def get_config(self):
        config = super().get_config()
        config["bias_map_shape"] = list(self.bias_map_shape)
        return config
