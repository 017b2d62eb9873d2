"""The ``pblczero`` protobuf schema (lc0's ``net.proto``), declared field by field in Python.

We build the message classes at import time from a ``FileDescriptorProto`` with the protobuf
runtime, so there is no generated code to keep in step with the runtime. Field numbers follow lc0's
published ``proto/net.proto``. Only what the SE-ResNet path needs is declared in full; the attention
fields are declared too so that a transformer file parses and can be refused by name.
"""

from __future__ import annotations

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

F = descriptor_pb2.FieldDescriptorProto
_OPT, _REP = F.LABEL_OPTIONAL, F.LABEL_REPEATED

# message name -> [(field name, number, type, type name or None, label)]
_LAYER, _CONV, _SE, _RES = ".pblczero.Weights.Layer", ".pblczero.Weights.ConvBlock", ".pblczero.Weights.SEunit", ".pblczero.Weights.Residual"
_ENC = ".pblczero.Weights.EncoderLayer"
_MSG = F.TYPE_MESSAGE

_ENUMS = {
    "Weights.Layer.Encoding": ["UNKNOWN_ENCODING", "LINEAR16", "FLOAT16", "BFLOAT16", "FLOAT32"],
    "NetworkFormat.InputFormat": {
        "INPUT_UNKNOWN": 0, "INPUT_CLASSICAL_112_PLANE": 1, "INPUT_112_WITH_CASTLING_PLANE": 2,
        "INPUT_112_WITH_CANONICALIZATION": 3, "INPUT_112_WITH_CANONICALIZATION_HECTOPLIES": 4,
        "INPUT_112_WITH_CANONICALIZATION_HECTOPLIES_ARMAGEDDON": 132,
        "INPUT_112_WITH_CANONICALIZATION_V2": 5, "INPUT_112_WITH_CANONICALIZATION_V2_ARMAGEDDON": 133,
    },
    "NetworkFormat.OutputFormat": ["OUTPUT_UNKNOWN", "OUTPUT_CLASSICAL", "OUTPUT_WDL"],
    "NetworkFormat.NetworkStructure": {
        "NETWORK_UNKNOWN": 0, "NETWORK_CLASSICAL": 1, "NETWORK_SE": 2,
        "NETWORK_CLASSICAL_WITH_HEADFORMAT": 3, "NETWORK_SE_WITH_HEADFORMAT": 4, "NETWORK_ONNX": 5,
        "NETWORK_ATTENTIONBODY_WITH_HEADFORMAT": 6, "NETWORK_ATTENTIONBODY_WITH_MULTIHEADFORMAT": 7,
        "NETWORK_AB_LEGACY_WITH_MULTIHEADFORMAT": 134,
    },
    "NetworkFormat.PolicyFormat": ["POLICY_UNKNOWN", "POLICY_CLASSICAL", "POLICY_CONVOLUTION", "POLICY_ATTENTION"],
    "NetworkFormat.ValueFormat": ["VALUE_UNKNOWN", "VALUE_CLASSICAL", "VALUE_WDL", "VALUE_PARAM"],
    "NetworkFormat.MovesLeftFormat": ["MOVES_LEFT_NONE", "MOVES_LEFT_V1"],
    "NetworkFormat.DefaultActivation": ["DEFAULT_ACTIVATION_RELU", "DEFAULT_ACTIVATION_MISH"],
    "Format.Encoding": ["UNKNOWN", "LINEAR16"],
}

_MESSAGES: dict[str, list[tuple]] = {
    "EngineVersion": [("major", 1, F.TYPE_UINT32), ("minor", 2, F.TYPE_UINT32), ("patch", 3, F.TYPE_UINT32)],
    "Weights.Layer": [
        ("min_val", 1, F.TYPE_FLOAT), ("max_val", 2, F.TYPE_FLOAT), ("params", 3, F.TYPE_BYTES),
        ("encoding", 4, F.TYPE_ENUM, ".pblczero.Weights.Layer.Encoding"),
        ("dims", 5, F.TYPE_UINT32, None, _REP),
    ],
    "Weights.ConvBlock": [(n, i, _MSG, _LAYER) for i, n in enumerate(
        ["weights", "biases", "bn_means", "bn_stddivs", "bn_gammas", "bn_betas"], start=1)],
    "Weights.SEunit": [(n, i, _MSG, _LAYER) for i, n in enumerate(["w1", "b1", "w2", "b2"], start=1)],
    "Weights.Residual": [("conv1", 1, _MSG, _CONV), ("conv2", 2, _MSG, _CONV), ("se", 3, _MSG, _SE)],
    # Attention encoder layers are declared opaquely (as bytes-bearing messages) only to be recognised.
    "Weights.EncoderLayer": [],
    "Weights": [
        ("input", 1, _MSG, _CONV), ("residual", 2, _MSG, _RES, _REP),
        ("policy1", 11, _MSG, _CONV), ("policy", 3, _MSG, _CONV),
        ("ip_pol_w", 4, _MSG, _LAYER), ("ip_pol_b", 5, _MSG, _LAYER),
        ("value", 6, _MSG, _CONV), ("ip1_val_w", 7, _MSG, _LAYER), ("ip1_val_b", 8, _MSG, _LAYER),
        ("ip2_val_w", 9, _MSG, _LAYER), ("ip2_val_b", 10, _MSG, _LAYER),
        ("moves_left", 12, _MSG, _CONV), ("ip1_mov_w", 13, _MSG, _LAYER), ("ip1_mov_b", 14, _MSG, _LAYER),
        ("ip2_mov_w", 15, _MSG, _LAYER), ("ip2_mov_b", 16, _MSG, _LAYER),
        ("pol_encoder", 21, _MSG, _ENC, _REP), ("encoder", 27, _MSG, _ENC, _REP),
        ("headcount", 28, F.TYPE_UINT32),
    ],
    "TrainingParams": [
        ("training_steps", 1, F.TYPE_UINT32), ("learning_rate", 2, F.TYPE_FLOAT), ("mse_loss", 3, F.TYPE_FLOAT),
        ("policy_loss", 4, F.TYPE_FLOAT), ("accuracy", 5, F.TYPE_FLOAT), ("lc0_params", 6, F.TYPE_STRING),
    ],
    "NetworkFormat": [
        ("input", 1, F.TYPE_ENUM, ".pblczero.NetworkFormat.InputFormat"),
        ("output", 2, F.TYPE_ENUM, ".pblczero.NetworkFormat.OutputFormat"),
        ("network", 3, F.TYPE_ENUM, ".pblczero.NetworkFormat.NetworkStructure"),
        ("policy", 4, F.TYPE_ENUM, ".pblczero.NetworkFormat.PolicyFormat"),
        ("value", 5, F.TYPE_ENUM, ".pblczero.NetworkFormat.ValueFormat"),
        ("moves_left", 6, F.TYPE_ENUM, ".pblczero.NetworkFormat.MovesLeftFormat"),
        ("default_activation", 7, F.TYPE_ENUM, ".pblczero.NetworkFormat.DefaultActivation"),
    ],
    "Format": [
        ("weights_encoding", 1, F.TYPE_ENUM, ".pblczero.Format.Encoding"),
        ("network_format", 2, _MSG, ".pblczero.NetworkFormat"),
    ],
    "OnnxModel": [("model", 1, F.TYPE_BYTES)],
    "Net": [
        ("magic", 1, F.TYPE_FIXED32), ("license", 2, F.TYPE_STRING),
        ("min_version", 3, _MSG, ".pblczero.EngineVersion"), ("format", 4, _MSG, ".pblczero.Format"),
        ("training_params", 5, _MSG, ".pblczero.TrainingParams"), ("weights", 10, _MSG, ".pblczero.Weights"),
        ("onnx_model", 11, _MSG, ".pblczero.OnnxModel"),
    ],
}


def _build_file() -> descriptor_pb2.FileDescriptorProto:
    fdp = descriptor_pb2.FileDescriptorProto(name="conceptchess_lc0_net.proto", package="pblczero", syntax="proto2")
    made: dict[str, descriptor_pb2.DescriptorProto] = {}

    def msg(path: str) -> descriptor_pb2.DescriptorProto:
        if path not in made:
            parent, _, leaf = path.rpartition(".")
            made[path] = (msg(parent).nested_type if parent else fdp.message_type).add(name=leaf)
        return made[path]

    for path, fields in _MESSAGES.items():
        m = msg(path)
        for spec in fields:
            name, number, ftype = spec[:3]
            type_name = spec[3] if len(spec) > 3 else None
            label = spec[4] if len(spec) > 4 else _OPT
            fd = m.field.add(name=name, number=number, type=ftype, label=label)
            if type_name:
                fd.type_name = type_name
    for path, values in _ENUMS.items():
        owner, _, leaf = path.rpartition(".")
        e = msg(owner).enum_type.add(name=leaf)
        items = values.items() if isinstance(values, dict) else ((v, i) for i, v in enumerate(values))
        for vname, number in items:
            e.value.add(name=vname, number=number)
    return fdp


_pool = descriptor_pool.DescriptorPool()
_pool.Add(_build_file())


def _cls(name: str):
    return message_factory.GetMessageClass(_pool.FindMessageTypeByName(f"pblczero.{name}"))


Net = _cls("Net")
Weights = _cls("Weights")
NetworkFormat = _cls("NetworkFormat")
Layer = _cls("Weights.Layer")

WEIGHTS_MAGIC = 0x1C0


def enum_name(message, field: str) -> str:
    """The symbolic name of an enum field's value (``'VALUE_WDL'``)."""
    fd = message.DESCRIPTOR.fields_by_name[field]
    value = getattr(message, field)
    ev = fd.enum_type.values_by_number.get(value)
    return ev.name if ev else f"{field.upper()}_{value}"
