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


def test_layers_default_to_kaiming_weights_and_zero_biases():
    layer = nn.Conv2d(32, 64, 5)
    assert layer.weight.data.std() == pytest.approx(math.sqrt(2 / (32 * 25)), rel=0.03)
    np.testing.assert_array_equal(layer.bias.data, 0)
