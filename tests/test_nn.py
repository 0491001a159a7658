"""Modules: registration and names, saving and loading, modes, layers' behaviour, shape errors, initialisers."""

import math

import numpy as np
import pytest

import tinynet
from tinynet import nn


class Net(nn.Module):
    """A Module holding a Sequential, a layer and a parameter of its own, as AlexNet does."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.MaxPool2d(2))
        self.classifier = nn.Sequential(nn.Flatten(), nn.Dropout(0.5), nn.Linear(4 * 3 * 3, 5))
        self.scale = nn.Parameter(np.ones(1, dtype=np.float32))

    def forward(self, x):
        return self.classifier(self.features(x)) * self.scale


def images(n=2, c=3, size=8):
    return tinynet.tensor(np.random.default_rng(0).standard_normal((n, c, size, size)).astype(np.float32))


# -- registration and names ---------------------------------------------------------


def test_named_parameters_use_pytorch_dotted_names():
    names = [name for name, _ in Net().named_parameters()]
    assert names == [
        "scale", "features.0.weight", "features.0.bias", "classifier.2.weight", "classifier.2.bias",
    ]


def test_parameters_are_registered_by_attribute_and_unregistered_when_replaced():
    layer = nn.Linear(3, 2)
    assert [p.shape for p in layer.parameters()] == [(2, 3), (2,)]
    assert nn.Linear(3, 2, bias=False).parameters()[0].shape == (2, 3)
    assert len(nn.Linear(3, 2, bias=False).parameters()) == 1
    layer.bias = None
    assert [name for name, _ in layer.named_parameters()] == ["weight"]
    net = Net()
    net.classifier = nn.ReLU()
    assert "classifier.2.weight" not in dict(net.named_parameters())


def test_register_parameter_keeps_a_none_slot_that_takes_only_a_parameter_later():
    class Scale(nn.Module):
        def __init__(self, bias):
            super().__init__()
            self.weight = nn.Parameter(np.ones(2, dtype=np.float32))
            if bias:
                self.register_parameter("bias", nn.Parameter(np.zeros(2, dtype=np.float32)))
            else:
                self.register_parameter("bias", None)

    assert Scale(bias=False).bias is None and list(Scale(bias=False).state_dict()) == ["weight"]
    assert list(Scale(bias=True).state_dict()) == ["weight", "bias"]
    module = Scale(bias=False)
    with pytest.raises(TypeError, match="cannot assign Tensor as parameter 'bias'"):
        module.bias = tinynet.zeros(2)
    with pytest.raises(TypeError, match="register_parameter: 'scale' takes an nn.Parameter or None, got Tensor"):
        module.register_parameter("scale", tinynet.zeros(2))


def test_module_forgetting_super_init_gets_a_clear_error():
    class Broken(nn.Module):
        def __init__(self):
            self.weight = nn.Parameter(np.zeros(2))

    with pytest.raises(RuntimeError, match=r"super\(\)\.__init__\(\)"):
        Broken()


def test_parameters_are_float32_and_require_grad():
    for name, parameter in Net().named_parameters():
        assert parameter.dtype == np.float32, name
        assert parameter.requires_grad and parameter.is_leaf, name


def test_zero_grad_clears_every_parameter():
    net = Net()
    net(images()).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())


# -- saving and loading ---------------------------------------------------------------


def test_state_dict_round_trip():
    tinynet.manual_seed(1)
    source = Net()
    tinynet.manual_seed(2)
    target = Net()
    assert not np.array_equal(source.features[0].weight.data, target.features[0].weight.data)
    saved = {name: array.copy() for name, array in source.state_dict().items()}
    assert list(saved) == [name for name, _ in source.named_parameters()]
    target.load_state_dict(saved)
    for (name, a), (_, b) in zip(source.named_parameters(), target.named_parameters()):
        np.testing.assert_array_equal(a.data, b.data, err_msg=name)
        assert b.dtype == np.float32
    # loading copies: changing the dict afterwards leaves the model alone
    saved["features.0.weight"][...] = 0
    assert np.abs(target.features[0].weight.data).sum() > 0
    source.eval(), target.eval()
    np.testing.assert_array_equal(source(images()).data, target(images()).data)


def test_load_state_dict_converts_float64_to_the_parameters_dtype():
    layer = nn.Linear(2, 2)
    layer.load_state_dict({"weight": np.eye(2), "bias": np.zeros(2)})
    assert layer.weight.dtype == np.float32
    np.testing.assert_array_equal(layer.weight.data, np.eye(2))


def test_load_state_dict_names_the_missing_key():
    state = dict(Net().state_dict())
    del state["features.0.bias"]
    with pytest.raises(RuntimeError, match=r"missing keys \['features.0.bias'\]"):
        Net().load_state_dict(state)


def test_load_state_dict_names_the_unexpected_key():
    state = dict(Net().state_dict())
    state["features.9.weight"] = np.zeros(3, dtype=np.float32)
    with pytest.raises(RuntimeError, match=r"unexpected keys \['features.9.weight'\]"):
        Net().load_state_dict(state)


def test_load_state_dict_names_the_misshaped_key_with_both_shapes():
    state = dict(Net().state_dict())
    state["classifier.2.weight"] = np.zeros((5, 99), dtype=np.float32)
    net = Net()
    before = net.features[0].weight.data.copy()
    with pytest.raises(RuntimeError) as caught:
        net.load_state_dict(state)
    message = str(caught.value)
    assert "classifier.2.weight" in message and "(5, 36)" in message and "(5, 99)" in message
    np.testing.assert_array_equal(net.features[0].weight.data, before)  # nothing was half loaded


# -- modes and devices --------------------------------------------------------------


def test_train_and_eval_reach_every_descendant():
    net = Net()
    assert all(m.training for _, m in net.named_modules())
    assert net.eval() is net
    assert not any(m.training for _, m in net.named_modules())
    net.train()
    assert all(m.training for _, m in net.named_modules())
    net.classifier.train(False)
    assert net.training and net.features[0].training and not net.classifier[1].training


def test_module_to_cpu_keeps_parameters_and_drops_gradients():
    net = Net()
    net(images()).sum().backward()
    assert net.to("cpu") is net
    assert all(p.device == "cpu" and p.grad is None for p in net.parameters())
    with pytest.raises(ValueError, match="unknown device"):
        net.to("tpu")


# -- Dropout --------------------------------------------------------------------------


def test_dropout_is_the_identity_in_eval_mode():
    layer = nn.Dropout(0.5).eval()
    x = tinynet.tensor(np.arange(12, dtype=np.float32).reshape(3, 4), requires_grad=True)
    out = layer(x)
    np.testing.assert_array_equal(out.data, x.data)
    out.sum().backward()
    np.testing.assert_array_equal(x.grad, np.ones((3, 4)))


def test_dropout_in_training_keeps_about_one_minus_p_and_scales_by_its_inverse():
    layer = nn.Dropout(0.5)
    x = tinynet.tensor(np.ones(100_000, dtype=np.float32), requires_grad=True)
    out = layer(x)
    kept = out.data != 0
    assert 0.49 < kept.mean() < 0.51
    np.testing.assert_array_equal(out.data[kept], 2.0)  # inverted dropout: scaled at training time
    (mask,) = out.creator.saved_arrays
    assert mask.dtype == np.float32 and out.dtype == np.float32
    out.backward(np.ones(100_000, dtype=np.float32))
    np.testing.assert_array_equal(x.grad, out.data)  # the gradient goes through the same mask
    assert not np.array_equal(layer(x).data, out.data)  # a fresh mask every call


def test_dropout_rejects_bad_probabilities():
    for p in (-0.1, 1.0, 1.5):
        with pytest.raises(ValueError, match="dropout probability"):
            nn.Dropout(p)


# -- printing -------------------------------------------------------------------------


def test_repr_shows_the_tree_and_each_layers_settings():
    model = nn.Sequential(
        nn.Conv2d(48, 128, 5, padding=2, groups=2), nn.ReLU(), nn.LocalResponseNorm(5, k=2.0),
        nn.MaxPool2d(3, 2), nn.Flatten(), nn.Dropout(0.5), nn.Linear(256, 64),
    )
    text = repr(model)
    assert text.startswith("Sequential(\n")
    for expected in (
        "(0): Conv2d(48, 128, kernel_size=(5, 5), stride=(1, 1), padding=(2, 2), groups=2)",
        "(1): ReLU()",
        "(2): LocalResponseNorm(size=5, alpha=0.0001, beta=0.75, k=2.0, alpha_over_n=False)",
        "(3): MaxPool2d(kernel_size=(3, 3), stride=(2, 2), padding=(0, 0))",
        "(5): Dropout(p=0.5)",
        "(6): Linear(in_features=256, out_features=64, bias=True)",
    ):
        assert expected in text
    assert "Parameter(shape=(2, 3), dtype=float32, device=cpu)" == repr(nn.Linear(3, 2).weight)


# -- shape errors name the layer ---------------------------------------------------------


def _shape_error(model, x):
    with pytest.raises(tinynet.ShapeError) as caught:
        model(x)
    return caught.value


def test_conv_with_the_wrong_channels_names_the_layer_and_both_shapes():
    net = Net()
    error = _shape_error(net, images(c=4))
    message = str(error)
    assert message.startswith("features.0 (Conv2d(3, 4, kernel_size=(3, 3)")
    assert "(N, 3, H, W)" in message and "(2, 4, 8, 8)" in message
    assert error.layer is net.features[0]


def test_input_smaller_than_the_kernel_names_the_layer_and_both_sizes():
    message = str(_shape_error(Net(), images(size=2)))
    assert message.startswith("features.0 ")
    assert "(2, 3, 2, 2)" in message and "3x3 kernel" in message


def test_linear_with_the_wrong_width_names_the_layer_and_both_widths():
    # 10x10 images leave 4x4x4 = 64 features where the Linear expects 4x3x3 = 36
    message = str(_shape_error(Net(), images(size=10)))
    assert message.startswith("classifier.2 (Linear(in_features=36")
    assert "(N, 36)" in message and "(2, 64)" in message


def test_a_layer_on_its_own_is_named_model():
    message = str(_shape_error(nn.Linear(3, 2), tinynet.tensor(np.zeros((4, 5), dtype=np.float32))))
    assert message.startswith("model (Linear(") and "(N, 3)" in message and "(4, 5)" in message


def test_other_layers_report_wrong_ranks():
    assert "(N, C, H, W)" in str(_shape_error(nn.LocalResponseNorm(), tinynet.tensor(np.zeros((2, 3)))))
    assert "3x3 window" in str(_shape_error(nn.MaxPool2d(3, 2), tinynet.tensor(np.zeros((1, 1, 2, 2)))))
    assert "at least 2 dimensions" in str(_shape_error(nn.Flatten(), tinynet.tensor(np.zeros(3))))


# -- initialisers ---------------------------------------------------------------------------


def test_normal_init_has_the_papers_std():
    parameter = nn.Parameter(np.zeros((500, 400), dtype=np.float32))
    nn.init.normal_(parameter, std=0.01)
    assert parameter.dtype == np.float32
    assert abs(parameter.data.mean()) < 1e-4
    assert parameter.data.std() == pytest.approx(0.01, rel=0.01)
    nn.init.normal_(parameter, mean=1.0, std=0.5)
    assert parameter.data.mean() == pytest.approx(1.0, abs=0.01)
    assert parameter.data.std() == pytest.approx(0.5, rel=0.01)


def test_constant_init():
    parameter = nn.Parameter(np.zeros(7, dtype=np.float32))
    nn.init.constant_(parameter, 1.0)
    np.testing.assert_array_equal(parameter.data, np.ones(7))
    assert parameter.dtype == np.float32


def test_kaiming_normal_std_is_sqrt_two_over_fan_in():
    parameter = nn.Parameter(np.zeros((256, 64, 3, 3), dtype=np.float32))  # fan_in = 64*3*3
    nn.init.kaiming_normal_(parameter)
    assert parameter.data.std() == pytest.approx(math.sqrt(2 / (64 * 9)), rel=0.01)
    assert parameter.dtype == np.float32


@pytest.mark.parametrize("call", [
    "normal_(w)", "normal_(w, 2.0)", "uniform_(w)", "uniform_(w, -3.0, 1.0)", "zeros_(w)", "ones_(w)",
    "xavier_uniform_(w)", "xavier_normal_(w, gain=2.0)", "kaiming_uniform_(w, a=math.sqrt(5))",
    "kaiming_normal_(w)", "kaiming_normal_(w, mode='fan_out', nonlinearity='relu')",
    "kaiming_uniform_(w, nonlinearity='tanh')",
])
def test_initialisers_draw_from_torchs_distributions_with_torchs_defaults(call):
    torch = pytest.importorskip("torch")
    ours = eval(f"nn.init.{call}", {"nn": nn, "math": math, "w": nn.Parameter(np.zeros((400, 60, 3, 3), "float32"))})
    theirs = eval(f"torch.nn.init.{call}", {"torch": torch, "math": math, "w": torch.empty(400, 60, 3, 3)}).numpy()
    assert ours.data.mean() == pytest.approx(theirs.mean(), abs=float(0.01 * theirs.std()) + 1e-7)
    assert ours.data.std() == pytest.approx(theirs.std(), rel=0.01)


@pytest.mark.parametrize("nonlinearity, param", [("relu", None), ("tanh", None), ("leaky_relu", None),
                                                 ("leaky_relu", 0.2), ("sigmoid", None), ("linear", None)])
def test_calculate_gain_is_torchs(nonlinearity, param):
    torch = pytest.importorskip("torch")
    expected = torch.nn.init.calculate_gain(nonlinearity, param)
    assert nn.init.calculate_gain(nonlinearity, param) == pytest.approx(expected)


def test_fan_based_initialisers_refuse_a_vector_and_unknown_modes():
    with pytest.raises(ValueError, match="xavier_uniform_: .*2 or more dims, got shape \\(5,\\)"):
        nn.init.xavier_uniform_(nn.Parameter(np.zeros(5, "float32")))
    with pytest.raises(ValueError, match="mode must be 'fan_in' or 'fan_out', got 'fan_avg'"):
        nn.init.kaiming_normal_(nn.Parameter(np.zeros((3, 4), "float32")), mode="fan_avg")
    with pytest.raises(ValueError, match="unknown nonlinearity 'swish'"):
        nn.init.calculate_gain("swish")


def test_layers_default_to_kaiming_weights_and_zero_biases():
    layer = nn.Conv2d(32, 64, 5)
    assert layer.weight.data.std() == pytest.approx(math.sqrt(2 / (32 * 25)), rel=0.03)
    np.testing.assert_array_equal(layer.bias.data, 0)


# -- containers --------------------------------------------------------------------------


class Blocks(nn.Module):
    """A model that keeps its layers in a ModuleList and loops over them."""

    def __init__(self, widths=(3, 4, 5)):
        super().__init__()
        self.blocks = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths, widths[1:]))

    def forward(self, x, scale=1.0):
        for block in self.blocks:
            x = block(x).relu()
        return x * scale


def test_module_list_registers_its_modules_as_numbered_children():
    model = Blocks()
    model.blocks.append(nn.Linear(5, 2)).extend([nn.ReLU()])
    assert [name for name, _ in model.named_parameters()] == [
        "blocks.0.weight", "blocks.0.bias", "blocks.1.weight", "blocks.1.bias", "blocks.2.weight", "blocks.2.bias"]
    assert list(model.state_dict()) == [name for name, _ in model.named_parameters()]
    assert len(model.blocks) == 4 and isinstance(model.blocks[-1], nn.ReLU) and model.blocks[2].out_features == 2
    assert [type(m).__name__ for m in model.blocks] == ["Linear", "Linear", "Linear", "ReLU"]
    model.blocks[1] = nn.Linear(4, 5, bias=False)
    assert "blocks.1.bias" not in dict(model.named_parameters())
    first_two = model.blocks[:2]
    assert isinstance(first_two, nn.ModuleList) and list(first_two) == [model.blocks[0], model.blocks[1]]
    assert model.blocks[0].path == "blocks.0"  # slicing does not rename the model's layers


def test_module_list_refuses_what_it_cannot_hold_or_find():
    blocks = nn.ModuleList([nn.ReLU()])
    with pytest.raises(TypeError, match="ModuleList holds Modules, got .*type: create an instance"):
        blocks.append(nn.ReLU)
    with pytest.raises(TypeError, match="holds Modules, got 3 of type int"):
        nn.ModuleList([3])
    with pytest.raises(IndexError, match="index 1 is out of range for a ModuleList of 1 modules"):
        blocks[1]
    with pytest.raises(TypeError, match="loop over its modules"):
        blocks(tinynet.tensor(np.zeros(2)))
    with pytest.raises(TypeError, match="Sequential holds Modules"):
        nn.Sequential(nn.Linear(2, 2), "relu")


def test_a_layer_in_a_module_list_names_itself_in_shape_errors():
    message = str(_shape_error(Blocks(), tinynet.tensor(np.zeros((2, 7), dtype=np.float32))))
    assert message.startswith("blocks.0 (Linear(in_features=3")


def test_sequential_takes_names_from_an_ordered_dict_and_slices_into_a_sequential():
    from collections import OrderedDict

    model = nn.Sequential(OrderedDict([("conv", nn.Conv2d(3, 4, 3)), ("relu", nn.ReLU()), ("pool", nn.MaxPool2d(2))]))
    assert [name for name, _ in model.named_parameters()] == ["conv.weight", "conv.bias"]
    head = model[:2]
    assert isinstance(head, nn.Sequential) and [name for name, _ in head.named_children()] == ["conv", "relu"]
    np.testing.assert_array_equal(head(images()).data, model.relu(model.conv(images())).data)


def test_modules_children_and_named_children_walk_the_tree():
    net = Net()
    assert [name for name, _ in net.named_children()] == ["features", "classifier"]
    assert list(net.children()) == [net.features, net.classifier]
    assert [type(m).__name__ for m in net.modules()] == [
        "Net", "Sequential", "Conv2d", "ReLU", "MaxPool2d", "Sequential", "Flatten", "Dropout", "Linear"]


# -- apply, freezing, assignment, keyword arguments ----------------------------------------------


def test_apply_visits_children_before_their_parent_and_returns_the_module():
    net, seen = Net(), []
    assert net.apply(lambda m: seen.append(type(m).__name__)) is net
    assert seen == ["Conv2d", "ReLU", "MaxPool2d", "Sequential", "Flatten", "Dropout", "Linear", "Sequential", "Net"]

    def ones_for_linear(module):
        if isinstance(module, nn.Linear):
            nn.init.constant_(module.weight, 1.0)

    np.testing.assert_array_equal(net.apply(ones_for_linear).classifier[2].weight.data, 1.0)


def test_requires_grad_false_freezes_parameters_so_the_optimizer_leaves_them():
    net = Net()
    assert net.features.requires_grad_(False) is net.features
    frozen = net.features[0].weight.data.copy()
    sgd = tinynet.optim.SGD(net.parameters(), lr=0.1)
    net(images()).sum().backward()
    assert net.features[0].weight.grad is None and net.classifier[2].weight.grad is not None
    sgd.step()
    np.testing.assert_array_equal(net.features[0].weight.data, frozen)
    net.requires_grad_()
    assert all(p.requires_grad for p in net.parameters())


def test_assigning_a_plain_tensor_to_a_parameter_is_refused_not_silently_unregistered():
    layer = nn.Linear(3, 2)
    with pytest.raises(TypeError, match=r"cannot assign Tensor as parameter 'weight' \(nn.Parameter or None.*\.data"):
        layer.weight = tinynet.tensor(np.zeros((2, 3), dtype=np.float32))
    layer.weight = nn.Parameter(np.ones((2, 3), dtype=np.float32))
    assert layer.parameters()[0] is layer.weight
    np.testing.assert_array_equal(layer.state_dict()["weight"], 1.0)
    layer.bias = None
    assert list(layer.state_dict()) == ["weight"]
    with pytest.raises(TypeError, match="as parameter 'bias'"):
        layer.bias = np.zeros(2, dtype=np.float32)
    with pytest.raises(TypeError, match="as parameter 'weight'"):
        layer.weight = nn.ReLU()
    net = Net()
    with pytest.raises(TypeError, match=r"cannot assign int as child module 'features' \(nn.Module or None"):
        net.features = 3
    del net.features
    assert not any(name.startswith("features") for name, _ in net.named_parameters())


def test_parameter_of_a_tensor_takes_its_values():
    parameter = nn.Parameter(tinynet.tensor([1.0, 2.0]))
    assert parameter.dtype == np.float32 and parameter.requires_grad
    np.testing.assert_array_equal(parameter.data, [1.0, 2.0])


def test_call_passes_keyword_arguments_to_forward():
    model = Blocks()
    x = tinynet.tensor(np.ones((2, 3), dtype=np.float32))
    np.testing.assert_allclose(model(x, scale=2.0).data, 2 * model(x).data)


def test_zero_grad_can_fill_with_zeros():
    net = Net()
    net(images()).sum().backward()
    net.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not p.grad.any() and p.grad.shape == p.shape for p in net.parameters())


def test_load_state_dict_takes_tensors_as_torch_users_pass_them():
    source, target = nn.Linear(3, 2), nn.Linear(3, 2)
    target.load_state_dict({name: tinynet.tensor(array * 2) for name, array in source.state_dict().items()})
    np.testing.assert_array_equal(target.weight.data, source.weight.data * 2)
    assert isinstance(target.weight.data, np.ndarray)


# -- activations -------------------------------------------------------------------------


def test_softmax_modules_normalise_along_the_dim_they_are_given():
    x = tinynet.tensor(np.linspace(-3, 3, 12, dtype=np.float32).reshape(3, 4))
    softmax = nn.Softmax(dim=0)(x).data
    np.testing.assert_allclose(softmax.sum(axis=0), 1.0, rtol=1e-6)
    np.testing.assert_allclose(nn.LogSoftmax(dim=0)(x).data, np.log(softmax), rtol=1e-5)
    assert repr(nn.Softmax(dim=1)) == "Softmax(dim=1)" and not isinstance(nn.LogSoftmax(1), nn.Softmax)
    with pytest.raises(TypeError):
        nn.Softmax()  # no implicit dim
    with pytest.raises(TypeError):
        tinynet.functional.softmax(x)


def test_relu_accepts_inplace_and_leaves_its_input_alone():
    x = tinynet.tensor(np.array([-1.0, 2.0], dtype=np.float32))
    np.testing.assert_array_equal(nn.ReLU(inplace=True)(x).data, [0.0, 2.0])
    np.testing.assert_array_equal(x.data, [-1.0, 2.0])
    assert repr(nn.ReLU(inplace=True)) == "ReLU(inplace=True)" and repr(nn.ReLU()) == "ReLU()"


def test_sigmoid_and_tanh_modules_compute_their_functions_and_gradients():
    x = tinynet.tensor(np.linspace(-3, 3, 12, dtype=np.float32).reshape(3, 4), requires_grad=True)
    sigmoid = 1 / (1 + np.exp(-x.data))
    np.testing.assert_allclose(nn.Sigmoid()(x).data, sigmoid, rtol=1e-6)
    np.testing.assert_allclose(nn.Tanh()(x).data, np.tanh(x.data), rtol=1e-6)
    (nn.Sigmoid()(x) + nn.Tanh()(x)).sum().backward()
    np.testing.assert_allclose(x.grad, sigmoid * (1 - sigmoid) + 1 - np.tanh(x.data) ** 2, rtol=1e-5)
