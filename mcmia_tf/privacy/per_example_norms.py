"""Fast per-example gradient norms for DP-SGD on tf_keras conv nets.

Registry functions in tensorflow-privacy's `fast_gradient_clipping` format,
`fn(layer, input_args, input_kwargs, tape, num_microbatches=None) ->
(base_vars, outputs, sqr_norm_fn)`: `base_vars` is the layer's pre-activation
output recomputed (and watched) on `tape`, `outputs` the activated output, and
`sqr_norm_fn(dL/dbase_vars)` the (batch,) squared L2 norms of the per-example
gradients of all the layer's trainable variables (L = summed loss).

tensorflow-privacy's registry is keyed by `tf.keras` classes, Keras 3 ones on
TF >= 2.16, so `make_layer_registry` fills a `LayerRegistry` with tf_keras
classes. Used from tensorflow-privacy, and working on tf_keras models:
`LayerRegistry`, `einsum_utils` (Dense), `clip_grads.compute_gradient_norms` /
`compute_clipped_gradients_and_outputs` and `gradient_clipping_utils.
model_forward_pass` (they only touch the functional graph's private fields,
which tf_keras has). Not used: its registry functions, and its recursion into
sub-models, which tests `isinstance(layer, tf.keras.Model)` (Keras 3) and never
fires for a tf_keras sub-model; sub-models are registered here instead, with a
function that recurses through `model_forward_pass`.
"""

import warnings

import tensorflow as tf

from mcmia_tf.compat import ensure_tf_keras_model
from mcmia_tf.compat import has_layer_graph
from mcmia_tf.compat import import_tf_privacy
from mcmia_tf.compat import keras
from mcmia_tf.models.normalization import batch_norm_layers

__all__ = [
    "conv2d_layer_computation", "make_conv2d_layer_computation", "conv2d_norm_mode",
    "depthwise_conv2d_layer_computation", "dense_layer_computation",
    "group_normalization_layer_computation", "layer_normalization_layer_computation",
    "check_dp_compatible", "make_layer_registry", "per_example_squared_norms",
]


def _check_microbatches(num_microbatches):
    if num_microbatches is not None:
        raise NotImplementedError(
            "num_microbatches is not supported by the mcmia_tf per-example norm "
            f"registry functions; received num_microbatches={num_microbatches!r}. "
            "Use num_microbatches=None (true per-example clipping).")


def _single_input(layer, input_args, num_microbatches):
    _check_microbatches(num_microbatches)
    if len(input_args) != 1:
        raise ValueError(f"Layer {layer.name} ({type(layer).__name__}) must be called on "
                         f"exactly one input tensor; received {len(input_args)}.")
    return input_args[0]


def _pre_activation(layer, input_args, input_kwargs, tape, num_microbatches):
    """Returns (x, base_vars, outputs): `layer` called without its activation, as dense.py."""
    x = _single_input(layer, input_args, num_microbatches)
    activation = layer.activation
    layer.activation = None  # A plain attribute: swapping it does not touch weight tracking.
    try:
        base_vars = layer(x, **input_kwargs)
    finally:
        layer.activation = activation
    tape.watch(base_vars)
    return x, base_vars, (activation(base_vars) if activation is not None else base_vars)


def _sum_squares(t):
    return tf.reduce_sum(tf.square(t), axis=tf.range(1, tf.rank(t)))


def _patches(layer, x):
    """[B, T, kh*kw*c_in] patches in the order of `kernel.reshape(-1, c_out)`."""
    kh, kw = layer.kernel_size
    p = tf.image.extract_patches(
        x, sizes=[1, kh, kw, 1], strides=[1, *layer.strides, 1],
        rates=[1, *layer.dilation_rate, 1], padding=layer.padding.upper())
    return tf.reshape(p, [tf.shape(p)[0], -1, p.shape[-1]])


def _check_conv(layer):
    if getattr(layer, "groups", 1) != 1:
        raise NotImplementedError(
            f"Layer {layer.name}: grouped convolutions (groups={layer.groups}) are not "
            "supported by the per-example norm functions. Use groups=1.")
    if layer.data_format != "channels_last":
        raise NotImplementedError(
            f"Layer {layer.name}: only data_format='channels_last' is supported; "
            f"received data_format={layer.data_format!r}.")


def _check_mode(mode):
    if mode not in ("auto", "direct", "ghost"):
        raise ValueError(f"Invalid value for argument `mode`: {mode!r}. Expected one of "
                         "'auto', 'direct', 'ghost'.")


def conv2d_norm_mode(layer, input_shape, mode="auto"):
    """Returns "direct" or "ghost": the cheaper way to get a Conv2D's norms.

    Per example, with T output positions, d = kh*kw*c_in and c = filters, the
    direct way materializes G = P^T g ([d, c]) in T*d*c multiply-adds and B*d*c
    memory; the ghost way forms the Gram matrices P P^T and g g^T ([T, T]) in
    T^2*(d + c) multiply-adds and B*T^2 memory. "auto" implements

      ghost  iff  T * (d + c) < d * c   (else direct; also direct if T is unknown);

    "direct" or "ghost" are returned as is. `input_shape` includes the batch axis.
    """
    _check_mode(mode)
    if mode != "auto":
        return mode
    out_h, out_w = tf.TensorShape(layer.compute_output_shape(input_shape))[1:3]
    if out_h is None or out_w is None:
        return "direct"  # Its memory does not grow with T.
    t = out_h * out_w
    d = layer.kernel_size[0] * layer.kernel_size[1] * int(input_shape[-1])
    c = layer.filters
    return "ghost" if t * (d + c) < d * c else "direct"


def make_conv2d_layer_computation(mode="auto"):
    """Returns a registry function for tf_keras `Conv2D` using `mode` (see below).

    Per example i, the kernel gradient is G_i = sum_t p_t g_t^T, with p_t the
    input patch the convolution multiplies at output position t and g_t the
    gradient of the summed loss w.r.t. the pre-activation output there.
    "direct" computes ||G_i||_F^2 from G_i; "ghost" (Li et al. 2022, "Large
    language models can be strong differentially private learners") uses
    ||G_i||_F^2 = sum_{t,t'} <p_t, p_t'> <g_t, g_t'>; "auto" picks per layer the
    one with fewer FLOPs (Bu et al. 2022 "mixed ghost clipping",
    github.com/JialinMao/private_CNN), see `conv2d_norm_mode`. The bias gradient
    sum_t g_t adds its squared norm. `mode` is "auto", "direct" or "ghost".
    """
    _check_mode(mode)

    def conv2d_computation(layer, input_args, input_kwargs, tape, num_microbatches=None):
        _check_conv(layer)
        x, base_vars, outputs = _pre_activation(layer, input_args, input_kwargs, tape,
                                                num_microbatches)
        layer_mode = conv2d_norm_mode(layer, x.shape, mode)

        def sqr_norm_fn(grads):
            # Computed here, after the forward tape has stopped recording.
            p = _patches(layer, tf.cast(x, grads.dtype))
            g = tf.reshape(grads, [tf.shape(grads)[0], -1, grads.shape[-1]])
            if layer_mode == "ghost":
                norms = tf.reduce_sum(tf.matmul(p, p, transpose_b=True)
                                      * tf.matmul(g, g, transpose_b=True), axis=[1, 2])
            else:
                norms = _sum_squares(tf.matmul(p, g, transpose_a=True))
            if layer.use_bias:
                norms += _sum_squares(tf.reduce_sum(g, axis=1))
            return norms

        return base_vars, outputs, sqr_norm_fn

    conv2d_computation.__name__ = f"conv2d_{mode}_layer_computation"
    return conv2d_computation


conv2d_layer_computation = make_conv2d_layer_computation("auto")


def depthwise_conv2d_layer_computation(layer, input_args, input_kwargs, tape,
                                       num_microbatches=None):
    """Registry function for tf_keras `DepthwiseConv2D` (direct per-channel einsum).

    Output channel k*m + j only sees input channel k, so per example
    dW[:, :, k, j] = sum_t p_t[:, :, k] g_t[k*m + j], with m the depth multiplier.
    """
    _check_conv(layer)
    x, base_vars, outputs = _pre_activation(layer, input_args, input_kwargs, tape,
                                            num_microbatches)

    def sqr_norm_fn(grads):
        c_in, m = int(x.shape[-1]), layer.depth_multiplier
        p = _patches(layer, tf.cast(x, grads.dtype))
        b, t = tf.shape(p)[0], tf.shape(p)[1]
        p = tf.reshape(p, [b, t, -1, c_in])
        g = tf.reshape(grads, [b, t, c_in, m])
        norms = _sum_squares(tf.einsum("btkc,btcm->bkcm", p, g))
        if layer.use_bias:
            norms += _sum_squares(tf.reduce_sum(g, axis=1))
        return norms

    return base_vars, outputs, sqr_norm_fn


def dense_layer_computation(layer, input_args, input_kwargs, tape, num_microbatches=None):
    """Registry function for tf_keras `Dense` (Goodfellow 2015, arXiv:1510.01799).

    ||dW_i||^2 = <X_i X_i^T, G_i G_i^T> (rows = positions of a >2D input), plus
    ||sum_rows G_i||^2 for the bias, via tensorflow-privacy's `einsum_utils`.
    """
    einsum_utils = import_tf_privacy(
        "privacy.fast_gradient_clipping.registry_functions.einsum_utils")
    x, base_vars, outputs = _pre_activation(layer, input_args, input_kwargs, tape,
                                            num_microbatches)

    def sqr_norm_fn(grads):
        return einsum_utils.compute_fast_einsum_squared_gradient_norm(
            "...b,bc->...c", tf.cast(x, grads.dtype), grads,
            "c" if layer.use_bias else None)

    return base_vars, outputs, sqr_norm_fn


def _affine_norm_computation(layer, x_hat, param_axes, tape):
    """y = gamma * x_hat + beta; d(gamma)_i = sum g*x_hat, d(beta)_i = sum g.

    Sums run over the non-batch axes not in `param_axes`. x_hat is computed by
    the caller instead of swapping `layer.gamma`/`beta` (as tensorflow-privacy
    does): reassigning tracked variables reorders `layer.trainable_weights`.
    """
    rank = x_hat.shape.rank
    shape = [1] * rank
    for a in param_axes:
        shape[a] = x_hat.shape[a]
    y = x_hat
    if layer.scale:
        y = y * tf.reshape(tf.cast(layer.gamma, x_hat.dtype), shape)
    if layer.center:
        y = y + tf.reshape(tf.cast(layer.beta, x_hat.dtype), shape)
    tape.watch(y)
    sum_axes = [a for a in range(1, rank) if a not in param_axes]

    def sqr_norm_fn(grads):
        norms = tf.zeros(tf.shape(grads)[:1], grads.dtype)
        if layer.scale:
            norms += _sum_squares(tf.reduce_sum(grads * x_hat, axis=sum_axes))
        if layer.center:
            norms += _sum_squares(tf.reduce_sum(grads, axis=sum_axes))
        return norms

    return y, y, sqr_norm_fn


def layer_normalization_layer_computation(layer, input_args, input_kwargs, tape,
                                          num_microbatches=None):
    """Registry function for tf_keras `LayerNormalization` (per-example gamma/beta)."""
    x = tf.cast(_single_input(layer, input_args, num_microbatches), layer.compute_dtype)
    axes = [a % x.shape.rank for a in layer.axis]
    if 0 in axes:
        raise ValueError(f"Layer {layer.name} normalizes over the batch axis, so per-example "
                         "gradients are not defined.")
    mean, variance = tf.nn.moments(x, axes, keepdims=True)
    x_hat = (x - mean) * tf.math.rsqrt(variance + layer.epsilon)
    return _affine_norm_computation(layer, x_hat, axes, tape)


def group_normalization_layer_computation(layer, input_args, input_kwargs, tape,
                                          num_microbatches=None):
    """Registry function for tf_keras `GroupNormalization` (per-example gamma/beta)."""
    if input_kwargs.get("mask") is not None:
        raise NotImplementedError(f"Layer {layer.name}: masked GroupNormalization is not "
                                  "supported by the per-example norm functions.")
    x = tf.cast(_single_input(layer, input_args, num_microbatches), layer.compute_dtype)
    rank, axis = x.shape.rank, layer.axis % x.shape.rank
    shape = tf.unstack(tf.shape(x))
    grouped_shape = shape[:axis] + [layer.groups, shape[axis] // layer.groups] + shape[axis + 1:]
    grouped = tf.reshape(x, tf.stack(grouped_shape))
    reduce_axes = [a for a in range(1, rank + 1) if a != axis]
    mean, variance = tf.nn.moments(grouped, reduce_axes, keepdims=True)
    x_hat = tf.reshape((grouped - mean) * tf.math.rsqrt(variance + layer.epsilon), tf.shape(x))
    x_hat = tf.ensure_shape(x_hat, x.shape)
    return _affine_norm_computation(layer, x_hat, [axis], tape)


def _make_nested_model_computation(registry):
    """Recurses into a tf_keras sub-model (tensorflow-privacy only recurses into Keras 3)."""
    clip_grads = import_tf_privacy("privacy.fast_gradient_clipping.clip_grads")
    utils = import_tf_privacy("privacy.fast_gradient_clipping.gradient_clipping_utils")

    def nested_model_computation(model, input_args, input_kwargs, tape, num_microbatches=None):
        _check_microbatches(num_microbatches)
        generator_fn = clip_grads.get_registry_generator_fn(tape, registry, num_microbatches)
        inputs = input_args[0] if len(input_args) == 1 else input_args
        outputs, generated = utils.model_forward_pass(model, inputs, generator_fn)
        generated = [g for g in generated if g is not None]
        base_vars = [g[0] for g in generated]

        def sqr_norm_fn(grads):
            return tf.add_n([g[1](grad) for g, grad in zip(generated, grads)])

        return base_vars, outputs, sqr_norm_fn

    return nested_model_computation


def make_layer_registry(conv_mode="auto"):
    """Returns a tensorflow-privacy `LayerRegistry` keyed by tf_keras classes.

    `LayerRegistry` looks layers up by their exact class (`hash(cls)`), so
    subclasses never match: `Conv2DTranspose` (a `Conv2D` subclass) and
    `DepthwiseConv2D` (a sibling `Conv` subclass) never get the Conv2D function;
    `clip_grads` refuses unregistered trainable layers (NotImplementedError).

    Args:
      conv_mode: "auto", "direct" or "ghost", for Conv2D layers.
    """
    layer_registry = import_tf_privacy("privacy.fast_gradient_clipping.layer_registry")
    # `keras.Model(inputs, outputs)` returns a private subclass and lookups are by exact
    # class: take the class from a functional model instead of naming the private module.
    probe = keras.Input((1,))
    functional = type(keras.Model(probe, keras.layers.Identity()(probe)))
    registry = layer_registry.LayerRegistry()
    for cls, fn in [
            (keras.layers.Conv2D, make_conv2d_layer_computation(conv_mode)),
            (keras.layers.DepthwiseConv2D, depthwise_conv2d_layer_computation),
            (keras.layers.Dense, dense_layer_computation),
            (keras.layers.GroupNormalization, group_normalization_layer_computation),
            (keras.layers.LayerNormalization, layer_normalization_layer_computation)]:
        registry.insert(cls, fn)
    nested = _make_nested_model_computation(registry)
    registry.insert(keras.Sequential, nested)
    registry.insert(functional, nested)
    return registry


def check_dp_compatible(model, registry=None):
    """Refuses BatchNormalization (nested too: ValueError) and lists unregistered layers.

    Args:
      model: a tf_keras model.
      registry: a `LayerRegistry`; defaults to `make_layer_registry()`.

    Returns:
      "name (ClassName)" of each trainable layer not in the registry (also warned).
    """
    ensure_tf_keras_model(model)
    registry = registry or make_layer_registry()
    batch_norms = batch_norm_layers(model)
    if batch_norms:
        raise ValueError(
            f"Invalid layer for DP-SGD: BatchNormalization layer `{batch_norms[0].name}` mixes "
            "examples through batch statistics, so per-example gradients are not defined. "
            "Use GroupNormalization (e.g. build the model with norm=\"group\") or "
            "LayerNormalization instead.")
    missing = []

    def visit(container):
        for layer in container.layers:
            if isinstance(layer, keras.Model) and registry.is_elem(layer):
                visit(layer)
            elif layer.trainable_weights and not registry.is_elem(layer):
                missing.append(f"{layer.name} ({type(layer).__name__})")

    visit(model)
    if missing:
        warnings.warn(
            "Trainable layers with no fast per-example norm function: " + ", ".join(missing)
            + ". tensorflow-privacy would fall back to slow per-example Jacobians "
            "(DPModel) or refuse them (clip_grads.compute_gradient_norms).", stacklevel=2)
    return missing


def per_example_squared_norms(model, registry, x, y, loss_fn):
    """(batch,) squared L2 norms of the per-example loss gradients (all trainable variables).

    Runs tensorflow-privacy's `clip_grads.compute_gradient_norms` (its forward
    pass over the functional graph, with `registry`) and squares its result.

    Args:
      model: a tf_keras functional or Sequential model built on `keras.Input`.
      registry: from `make_layer_registry`.
      x, y: a batch of inputs and labels.
      loss_fn: `loss_fn(y_true, y_pred)` -> (batch,) losses, or a tf_keras
        `Loss`, whose reduction is then replaced by "none".
    """
    ensure_tf_keras_model(model)
    if not has_layer_graph(model):
        raise ValueError(f"Model {model.name} has no layer graph: build it on `keras.Input` "
                         "(functional or Sequential with an input shape).")
    if isinstance(loss_fn, keras.losses.Loss):
        loss_fn = type(loss_fn).from_config({**loss_fn.get_config(), "reduction": "none"})
    clip_grads = import_tf_privacy("privacy.fast_gradient_clipping.clip_grads")
    norms = clip_grads.compute_gradient_norms(
        model, registry, x, y,
        per_example_loss_fn=lambda y_true, y_pred, unused_weights: loss_fn(y_true, y_pred))
    return tf.square(norms)
