"""Export a network of tinynet layers to ONNX, built node by node with ``onnx.helper``.

The layers map one to one onto ONNX operators:

    Conv2d            Conv (strides, pads, group)
    ReLU              Relu
    LocalResponseNorm LRN: ONNX divides alpha by the window size, as PyTorch and Caffe do,
                      so the paper's formula (alpha not divided, section 3.3) exports with
                      alpha * size
    MaxPool2d         MaxPool
    Flatten           Flatten (axis 1)
    Linear            Gemm with the weight transposed (transB), y = x W^T + b
    Dropout           nothing: at inference dropout is the identity (inverted dropout
                      scales at training time)

The batch dimension is left symbolic ("batch"), so the file takes any batch size. The
exported file opens in Netron (https://netron.app) to be looked at layer by layer.
"""

from . import backend, nn

OPSET = 17


def export_onnx(layers, input_shape, path, input_name="images", output_name="logits"):
    """Write ``layers`` (applied in order) as an ONNX model taking float32 input of shape
    (batch, *input_shape) to ``path``; returns the checked ``onnx.ModelProto``."""
    try:
        import onnx
        from onnx import TensorProto, helper
    except ImportError as error:
        raise ImportError("exporting to ONNX needs the onnx package: pip install onnx (or the project's "
                          "onnx extra)") from error

    nodes, weights, current = [], [], input_name
    for index, layer in enumerate(layers):
        name = f"{index}_{type(layer).__name__}"
        made = _node(layer, name, current, weights)
        if made is not None:
            nodes.append(made)
            current = made.output[0]
    if not nodes:
        raise ValueError("export_onnx got no layer that computes anything (only Dropout, or none)")
    nodes[-1].output[0] = output_name
    graph = helper.make_graph(
        nodes, "tinynet",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, ["batch", *input_shape])],
        [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, None)],  # its shape is inferred
        initializer=weights,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="tinynet")
    model = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, path)
    return model


def _node(layer, name, source, weights):
    """The ONNX node for one layer (None for Dropout), adding its parameters to ``weights``."""
    from onnx import helper, numpy_helper

    def parameters(*names):
        for suffix in names:
            array = backend.to_numpy(getattr(layer, suffix).data).astype("float32")
            weights.append(numpy_helper.from_array(array, f"{name}.{suffix}"))
        return [f"{name}.{suffix}" for suffix in names]

    def node(op, inputs, **attributes):
        return helper.make_node(op, inputs, [name], name=name, **attributes)

    if isinstance(layer, nn.Conv2d):
        ph, pw = layer.padding
        return node("Conv", [source, *parameters(*_weight_and_bias(layer))], kernel_shape=list(layer.kernel_size),
                    strides=list(layer.stride), pads=[ph, pw, ph, pw], group=layer.groups)
    if isinstance(layer, nn.ReLU):
        return node("Relu", [source])
    if isinstance(layer, nn.LocalResponseNorm):
        if layer.size % 2 == 0:  # ONNX centres its window, which needs an odd size
            raise ValueError(f"{name}: ONNX's LRN needs an odd size; got {layer.size}")
        alpha = layer.alpha if layer.alpha_over_n else layer.alpha * layer.size
        return node("LRN", [source], size=layer.size, alpha=alpha, beta=layer.beta, bias=layer.k)
    if isinstance(layer, nn.MaxPool2d):
        ph, pw = layer.padding
        return node("MaxPool", [source], kernel_shape=list(layer.kernel_size), strides=list(layer.stride),
                    pads=[ph, pw, ph, pw])
    if isinstance(layer, nn.Flatten):
        if layer.start_dim != 1:
            raise ValueError(f"{name}: only Flatten(start_dim=1) has an ONNX Flatten; got start_dim={layer.start_dim}")
        return node("Flatten", [source], axis=1)
    if isinstance(layer, nn.Linear):
        return node("Gemm", [source, *parameters(*_weight_and_bias(layer))], transB=1)
    if isinstance(layer, nn.Dropout):
        return None
    raise ValueError(f"{name}: no ONNX export for {type(layer).__name__}; expected one of Conv2d, ReLU, "
                     "LocalResponseNorm, MaxPool2d, Flatten, Linear, Dropout")


def _weight_and_bias(layer):
    return ("weight",) if layer.bias is None else ("weight", "bias")
