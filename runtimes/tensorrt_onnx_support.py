"""What TensorRT's ONNX parser accepts, checked on any machine (no tensorrt needed): operators, opsets,
data types and the restrictions that matter for this graph.

The table is transcribed from onnx/onnx-tensorrt ``docs/operators.md``, the revision for TensorRT 10.15
("supports operators in the inclusive range of opset 9 to opset 24"; UINT8 "only supported as network
input or output tensor types"; INT8 only through Quantize/DequantizeLinear with zero zero-points):
https://github.com/onnx/onnx-tensorrt/blob/main/docs/operators.md. Only operators marked ``Y`` are
listed; Jetsons on JetPack 6 run TensorRT 10.3, whose table is the same for every operator used here.
"""

from __future__ import annotations

OPSET_RANGE = (9, 24)

_F = ("FP32", "FP16", "BF16")
_FI = (*_F, "INT32", "INT64")
_FIB = (*_FI, "BOOL")
# operator -> the data types of its (first, data) input that the parser supports
SUPPORTED: dict[str, tuple[str, ...]] = {
    **{op: _F for op in ("Acos", "Acosh", "Asin", "Asinh", "Atan", "Atanh", "Ceil", "Celu", "Clip", "Conv")},
    **{op: _F for op in ("ConvTranspose", "Cos", "Cosh", "CumSum", "Dropout", "Einsum", "Elu", "Erf", "Exp")},
    **{op: _F for op in ("Floor", "Gemm", "GlobalAveragePool", "GlobalLpPool", "GlobalMaxPool")},
    **{op: _F for op in ("GroupNormalization", "GRU", "HardSigmoid", "HardSwish", "Hardmax", "ImageScaler")},
    **{op: _F for op in ("InstanceNormalization", "IsInf", "LayerNormalization", "LeakyRelu", "Log")},
    **{op: _F for op in ("LogSoftmax", "LRN", "LSTM", "LpNormalization", "LpPool", "MatMul", "MaxPool")},
    **{op: _F for op in ("MeanVarianceNormalization", "ParametricSoftplus", "PRelu", "QuantizeLinear")},
    **{op: _F for op in ("RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike")},
    **{op: _F for op in ("Reciprocal", "Resize", "RMSNormalization", "RNN", "Round", "ScaledTanh", "Scan")},
    **{op: _F for op in ("Selu", "Sigmoid", "Sin", "Sinh", "Softmax", "Softplus", "Softsign", "Sqrt", "Tan")},
    **{op: _F for op in ("Tanh", "ThresholdedRelu", "Upsample", "AveragePool", "BatchNormalization")},
    **{op: _FI for op in ("Abs", "Add", "ArgMax", "ArgMin", "DepthToSpace", "Div", "Equal", "Greater")},
    **{op: _FI for op in ("GreaterOrEqual", "IsNaN", "Less", "LessOrEqual", "Max", "Min", "Mod", "Mul", "Neg")},
    **{op: _FI for op in ("Pad", "Pow", "Range", "Relu", "Scatter", "ScatterElements", "ScatterND", "Shrink")},
    **{op: _FI for op in ("Sign", "SpaceToDepth", "Sub", "Sum", "TopK")},
    **{op: _FI for op in ("ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceMax", "ReduceMean")},
    **{op: _FI for op in ("ReduceMin", "ReduceProd", "ReduceSum", "ReduceSumSquare")},
    **{op: _FIB for op in ("Concat", "Expand", "EyeLike", "Flatten", "Gather", "GatherElements", "GatherND")},
    **{op: _FIB for op in ("Identity", "If", "Loop", "OneHot", "Reshape", "ReverseSequence", "Shape", "Size")},
    **{op: _FIB for op in ("Slice", "Split", "Squeeze", "Tile", "Transpose", "Trilu", "Unsqueeze", "Where")},
    **{op: ("BOOL",) for op in ("And", "Not", "Or", "Xor")},
    "Cast": (*_FIB, "UINT8"),
    "CastLike": (*_FIB, "UINT8"),
    "Constant": (*_FIB, "FP8", "FP4", "INT4"),
    "ConstantOfShape": (*_FIB, "FP8", "FP4", "INT4"),
    "DequantizeLinear": ("INT8", "FP8", "FP4", "INT4"),
    "Gelu": (*_FI, "INT8"),
    "Mean": (*_FI, "FP8"),
    "BlackmanWindow": ("FP32", "FP16"),
    "HammingWindow": ("FP32", "FP16"),
    "HannWindow": ("FP32", "FP16"),
    "GridSample": ("FP32", "FP16"),
    "DeformConv": ("FP32", "FP16"),
    "Mish": ("FP32", "FP16"),
    "NonMaxSuppression": ("FP32", "FP16"),
    "NonZero": ("FP32", "FP16"),
    "RoiAlign": ("FP32", "FP16"),
    "STFT": ("FP32",),
}
# operators whose axes (or axis) input must be a build-time constant
CONSTANT_INPUTS = {
    **{op: 1 for op in ("ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceMax", "ReduceMean")},
    **{op: 1 for op in ("ReduceMin", "ReduceProd", "ReduceSum", "ReduceSumSquare", "Squeeze", "Unsqueeze")},
    "CumSum": 1,
}
RESIZE_MODES = {"nearest", "linear"}
RESIZE_COORDINATES = {"half_pixel", "pytorch_half_pixel", "tf_half_pixel_for_nn", "asymmetric", "align_corners"}

_TYPE_NAMES = {
    1: "FP32",
    2: "UINT8",
    3: "INT8",
    6: "INT32",
    7: "INT64",
    9: "BOOL",
    10: "FP16",
    11: "FP64",
    16: "BF16",
}


def _type_name(elem_type: int) -> str:
    return _TYPE_NAMES.get(elem_type, f"type {elem_type}")


def tensorrt_problems(model) -> list[str]:
    """Everything in ``model`` (an onnx ModelProto) that TensorRT's ONNX parser would refuse; [] = parsable."""
    import onnx
    from onnx import numpy_helper

    problems = []
    for opset in model.opset_import:
        if opset.domain in ("", "ai.onnx") and not OPSET_RANGE[0] <= opset.version <= OPSET_RANGE[1]:
            problems.append(f"opset {opset.version} outside TensorRT's {OPSET_RANGE[0]}..{OPSET_RANGE[1]}")
    inferred = onnx.shape_inference.infer_shapes(model)
    types = {
        v.name: v.type.tensor_type.elem_type
        for v in [*inferred.graph.input, *inferred.graph.output, *inferred.graph.value_info]
    }
    constants = {t.name: t for t in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    constants[node.output[0]] = attr.t
    for t in model.graph.initializer:
        types.setdefault(t.name, t.data_type)
    for node in model.graph.node:
        where = f"{node.op_type} {node.name or node.output[0]}"
        if node.domain not in ("", "ai.onnx"):
            problems.append(f"{where}: custom domain {node.domain!r}")
            continue
        if node.op_type not in SUPPORTED:
            problems.append(f"{where}: operator not supported by TensorRT's ONNX parser")
            continue
        data = node.input[0] if node.input else ""
        checked = [("input", data)] if data else []
        if node.op_type in ("Cast", "CastLike"):
            checked.append(("output", node.output[0]))
        for role, name in checked:
            if name in types and _type_name(types[name]) not in SUPPORTED[node.op_type]:
                problems.append(f"{where}: {role} type {_type_name(types[name])} not supported")
        if node.op_type in CONSTANT_INPUTS and len(node.input) > CONSTANT_INPUTS[node.op_type]:
            axes = node.input[CONSTANT_INPUTS[node.op_type]]
            if axes and axes not in constants:
                problems.append(f"{where}: axes must be a build-time constant")
        if node.op_type in ("QuantizeLinear", "DequantizeLinear") and len(node.input) > 2:
            zero = constants.get(node.input[2])
            if zero is None or numpy_helper.to_array(zero).any():
                problems.append(f"{where}: zero point must be a constant zero")
        if node.op_type == "Resize":
            attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
            mode = attrs.get("mode", b"nearest").decode()
            coords = attrs.get("coordinate_transformation_mode", b"half_pixel").decode()
            if mode not in RESIZE_MODES or coords not in RESIZE_COORDINATES or attrs.get("antialias", 0):
                problems.append(f"{where}: Resize mode {mode}/{coords}/antialias={attrs.get('antialias', 0)}")
    # UINT8 is allowed only on the network's inputs and outputs
    io = {v.name for v in [*model.graph.input, *model.graph.output]}
    for node in model.graph.node:
        for name in node.output:
            if types.get(name) == 2 and name not in io:
                problems.append(f"{node.op_type} {node.name}: UINT8 tensor {name} inside the network")
    return problems
