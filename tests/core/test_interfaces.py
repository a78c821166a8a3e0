"""Capability flags are declared in the protocols with their defaults and read with `declared`, for components
that subclass a protocol and for those that only match it."""

import pytest

from imrec.interfaces import Aligner, Encoder, Fuser, Head, Metric, declared, protocol_defaults


class Plain:
    """Matches the Fuser protocol structurally; declares no flag."""


class Declaring:
    independent_samples = True


class Subclass(Fuser):
    out_dim = 4
    aux_losses = ()


def test_each_protocol_declares_its_flags_with_defaults():
    assert protocol_defaults(Encoder) == {"independent_modalities": False}
    assert protocol_defaults(Fuser) == {"independent_samples": False}
    assert protocol_defaults(Aligner) == {"incomplete_only": False}
    assert protocol_defaults(Head) == {}
    assert dict(protocol_defaults(Metric)["display"]) == {}


def test_declared_reads_the_component_else_the_protocols_default():
    assert declared(Plain(), Fuser, "independent_samples") is False
    assert declared(Declaring, Fuser, "independent_samples") is True  # a class, as registered
    assert declared(Declaring(), Fuser, "independent_samples") is True
    assert declared(Subclass(), Fuser, "independent_samples") is False
    instance = Plain()
    instance.incomplete_only = True  # an instance attribute, as a recipe sets it
    assert declared(instance, Aligner, "incomplete_only") is True


def test_a_flag_the_protocol_does_not_declare_is_an_error():
    with pytest.raises(AttributeError, match="Fuser declares no attribute 'independent_sample' with a default; "
                                             "it declares: independent_samples"):
        declared(Declaring(), Fuser, "independent_sample")
    with pytest.raises(AttributeError, match=r"Head declares no attribute 'x' with a default; it declares: \(none\)"):
        declared(Plain(), Head, "x")


def test_builtins_declare_their_flags():
    from imrec_rohydr import Conv1dEncoder, GANAligner, MulTFuser

    assert declared(Conv1dEncoder, Encoder, "independent_modalities") is True
    assert declared(MulTFuser, Fuser, "independent_samples") is True
    assert declared(GANAligner(8, hidden=[8]), Aligner, "incomplete_only") is True
