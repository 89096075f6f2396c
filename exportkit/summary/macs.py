"""Multiply-accumulate counts per ONNX node, from shapes alone.

Conventions (one MAC = one multiply and one add): Conv ``out_elems x C_in/groups x kernel``;
ConvTranspose ``in_elems x C_out/groups x kernel``; Gemm ``M x N x K``; MatMul ``out_elems x K``;
Einsum the product of every index size; Attention ``B x H x S_q x S_kv x (D_qk + D_v)``;
LSTM/GRU/RNN ``seq x batch x (elements of W + R)``; pooling ``out_elems x kernel`` (global: input
elements); normalization and reductions: one per input element (LRN: ``size`` per element). Element-wise, activation and
data-movement ops count 0. Anything else, or a counted op whose shapes are unknown or symbolic
and unbound, is ``None``: unknown, never 0.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

import onnx

from exportkit.summary.results import Dim

__all__ = ["ZERO_MAC_OPS", "counted_op", "node_macs", "resolve_shape"]

Shape = tuple[int, ...]
ShapeOf = Callable[[str], Shape | None]


class NodeLike(Protocol):
    """An ``onnx.NodeProto``, or the summary's record of the fields it has read from one."""

    @property
    def op_type(self) -> str: ...

    @property
    def domain(self) -> str: ...

    @property
    def input(self) -> Sequence[str]: ...

    @property
    def output(self) -> Sequence[str]: ...

    @property
    def attribute(self) -> Sequence[onnx.AttributeProto]: ...


_STANDARD = ("", "ai.onnx")
_MS = "com.microsoft"


def _ops(names: str) -> frozenset[str]:
    return frozenset(names.split())


#: Standard ops that do no multiply-accumulate work worth counting.
ZERO_MAC_OPS = _ops(
    """
    Abs Acos Acosh Add And ArgMax ArgMin Asin Asinh Atan Atanh BitShift BitwiseAnd BitwiseNot
    BitwiseOr BitwiseXor BlackmanWindow Cast CastLike Ceil Celu CenterCropPad Clip Compress Concat
    ConcatFromSequence Constant ConstantOfShape Cos Cosh CumSum DepthToSpace DequantizeLinear Div
    Dropout DynamicQuantizeLinear Elu Equal Erf Exp Expand EyeLike Flatten Floor Gather
    GatherElements GatherND Gelu Greater GreaterOrEqual HammingWindow HannWindow HardSigmoid
    HardSwish Hardmax Identity IsInf IsNaN LeakyRelu Less LessOrEqual Log LogSoftmax Max Mean Min
    Mish Mod Mul Neg NonZero Not OneHot Or PRelu Pad Pow QuantizeLinear RandomNormal
    RandomNormalLike RandomUniform RandomUniformLike Range Reciprocal Relu Reshape ReverseSequence
    Round Scatter ScatterElements ScatterND Selu SequenceAt SequenceConstruct SequenceEmpty
    SequenceErase SequenceInsert SequenceLength Shape Shrink Sigmoid Sign Sin Sinh Size Slice
    Softmax Softplus Softsign SpaceToDepth Split SplitToSequence Sqrt Squeeze Sub Sum Swish Tan
    Tanh ThresholdedRelu Tile TopK Transpose Trilu Unique Unsqueeze Upsample Where Xor Resize
    StringNormalizer StringConcat StringSplit RegexFullMatch Bernoulli Multinomial
    """
)
_NORM_OPS = _ops(
    "BatchNormalization InstanceNormalization LayerNormalization GroupNormalization "
    "RMSNormalization LpNormalization MeanVarianceNormalization"
)
_MS_NORM_OPS = _ops(
    "SkipLayerNormalization SimplifiedLayerNormalization SkipSimplifiedLayerNormalization "
    "LayerNormalization"
)
_REDUCE_OPS = _ops(
    "ReduceL1 ReduceL2 ReduceLogSum ReduceLogSumExp ReduceMax ReduceMean ReduceMin ReduceProd "
    "ReduceSum ReduceSumSquare"
)
_POOL_OPS = _ops("MaxPool AveragePool LpPool")
_GLOBAL_POOL_OPS = _ops("GlobalAveragePool GlobalMaxPool GlobalLpPool")
_RNN_OPS = _ops("LSTM GRU RNN")
_COUNTED = (
    _ops(
        "Conv ConvInteger QLinearConv ConvTranspose Gemm MatMul MatMulInteger QLinearMatMul "
        "Einsum Attention LRN"
    )
    | _NORM_OPS
    | _REDUCE_OPS
    | _POOL_OPS
    | _GLOBAL_POOL_OPS
    | _RNN_OPS
)
_MS_COUNTED = _MS_NORM_OPS | {"FusedMatMul", "Attention", "MultiHeadAttention", "FusedConv"}


def counted_op(domain: str, op_type: str) -> bool:
    """Whether ``node_macs`` has a formula (or a known 0) for this op."""
    if domain in _STANDARD:
        return op_type in _COUNTED or op_type in ZERO_MAC_OPS
    return domain == _MS and op_type in _MS_COUNTED


_BINOPS: dict[type[ast.operator], Callable[[int, int], int]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.FloorDiv: operator.floordiv,
    ast.Div: operator.floordiv,
    ast.Mod: operator.mod,
}


def _eval_dim(expr: str, dims: Mapping[str, int]) -> int | None:
    """Value of a symbolic dim (``batch`` or an expression like ``2*s0 + 1``) under ``dims``."""
    if expr in dims:
        return dims[expr]
    try:
        tree = ast.parse(expr, mode="eval")
    except SyntaxError:
        return None

    def ev(n: ast.AST) -> int | None:
        if isinstance(n, ast.Expression):
            return ev(n.body)
        if isinstance(n, ast.Constant) and isinstance(n.value, int):
            return n.value
        if isinstance(n, ast.Name):
            return dims.get(n.id)
        if isinstance(n, ast.BinOp) and type(n.op) in _BINOPS:
            a, b = ev(n.left), ev(n.right)
            if a is None or b is None or (b == 0 and type(n.op) in (ast.FloorDiv, ast.Div)):
                return None
            return int(_BINOPS[type(n.op)](a, b))
        return None

    return ev(tree)


def resolve_shape(shape: tuple[Dim, ...] | None, dims: Mapping[str, int]) -> Shape | None:
    """A fully static shape, binding symbolic dims from ``dims``; None if any dim stays unknown."""
    if shape is None:
        return None
    out: list[int] = []
    for d in shape:
        if isinstance(d, int):
            out.append(d)
        elif isinstance(d, str) and dims:
            v = _eval_dim(d, dims)
            if v is None:
                return None
            out.append(v)
        else:
            return None
    return tuple(out)


def _attrs(node: NodeLike) -> dict[str, onnx.AttributeProto]:
    return {a.name: a for a in node.attribute}


def _in(node: NodeLike, i: int, shape_of: ShapeOf) -> Shape | None:
    if i >= len(node.input) or not node.input[i]:
        return None
    return shape_of(node.input[i])


def _out(node: NodeLike, shape_of: ShapeOf) -> Shape | None:
    return shape_of(node.output[0]) if node.output and node.output[0] else None


def node_macs(node: NodeLike, shape_of: ShapeOf) -> int | None:
    """MACs of one node given static shapes by value name; None when they cannot be counted."""
    domain, op = node.domain, node.op_type
    if domain in _STANDARD:
        if op in ZERO_MAC_OPS:
            return 0
        return _standard(node, op, shape_of)
    if domain == _MS:
        return _microsoft(node, op, shape_of)
    return None


def _standard(node: NodeLike, op: str, shape_of: ShapeOf) -> int | None:
    if op in ("Conv", "ConvInteger", "QLinearConv"):
        w = _in(node, 3 if op == "QLinearConv" else 1, shape_of)
        y = _out(node, shape_of)
        if w is None or y is None or len(w) < 2:
            return None
        return math.prod(y) * math.prod(w[1:])
    if op == "ConvTranspose":
        x, w = _in(node, 0, shape_of), _in(node, 1, shape_of)
        if x is None or w is None or len(w) < 2:
            return None
        return math.prod(x) * math.prod(w[1:])
    if op == "Gemm":
        a, y = _in(node, 0, shape_of), _out(node, shape_of)
        if a is None or y is None or len(a) != 2:
            return None
        trans_a = _attrs(node).get("transA")
        k = a[0] if trans_a is not None and trans_a.i else a[1]
        return math.prod(y) * k
    if op in ("MatMul", "MatMulInteger", "QLinearMatMul"):
        a, y = _in(node, 0, shape_of), _out(node, shape_of)
        if a is None or y is None or not a:
            return None
        return math.prod(y) * a[-1]
    if op == "Einsum":
        return _einsum(node, shape_of)
    if op == "Attention":
        return _attention(node, shape_of)
    if op in _RNN_OPS:
        x, w, r = (_in(node, i, shape_of) for i in range(3))
        if x is None or w is None or r is None or len(x) != 3:
            return None
        # seq x batch in either layout; W and R hold every direction and gate.
        return x[0] * x[1] * (math.prod(w) + math.prod(r))
    if op in _POOL_OPS:
        y = _out(node, shape_of)
        kernel = _attrs(node).get("kernel_shape")
        if y is None or kernel is None:
            return None
        return math.prod(y) * math.prod(int(k) for k in kernel.ints)
    if op == "LRN":  # each output sums the squares of `size` neighbouring channels
        x, size = _in(node, 0, shape_of), _attrs(node).get("size")
        return None if x is None or size is None else math.prod(x) * size.i
    if op in _GLOBAL_POOL_OPS or op in _NORM_OPS or op in _REDUCE_OPS:
        x = _in(node, 0, shape_of)
        return None if x is None else math.prod(x)
    return None


def _microsoft(node: NodeLike, op: str, shape_of: ShapeOf) -> int | None:
    if op in _MS_NORM_OPS:
        x = _in(node, 0, shape_of)
        return None if x is None else math.prod(x)
    if op == "FusedMatMul":
        return _standard(node, "MatMul", shape_of)
    if op == "FusedConv":
        return _standard(node, "Conv", shape_of)
    if op == "MultiHeadAttention":
        q, k = _in(node, 0, shape_of), _in(node, 1, shape_of)
        if q is None or k is None or len(q) != 3 or len(k) != 3:
            return None
        batch, s_q, hidden = q
        return 2 * batch * s_q * k[1] * hidden
    if op == "Attention":
        x, w = _in(node, 0, shape_of), _in(node, 1, shape_of)
        if x is None or w is None or len(x) != 3 or len(w) != 2:
            return None
        batch, seq, _ = x
        hidden = w[1] // 3
        return math.prod(x) * w[1] + 2 * batch * seq * seq * hidden
    return None


def _attention(node: NodeLike, shape_of: ShapeOf) -> int | None:
    """ai.onnx Attention (opset 23): Q·Kᵀ then softmax·V, per head, GQA-aware."""
    q, k, v = (_in(node, i, shape_of) for i in range(3))
    if q is None or k is None or v is None or len(q) != len(k) or len(q) not in (3, 4):
        return None
    if len(q) == 4:  # (B, H_q, S_q, D), (B, H_kv, S_kv, D), (B, H_kv, S_kv, D_v)
        batch, heads, s_q, d_qk = q
        return batch * heads * s_q * k[2] * (d_qk + v[3])
    attrs = _attrs(node)  # (B, S, H*D) with head counts as attributes
    q_heads, kv_heads = attrs.get("q_num_heads"), attrs.get("kv_num_heads")
    if q_heads is None or kv_heads is None or not q_heads.i or not kv_heads.i:
        return None
    batch, s_q, q_hidden = q
    v_per_head = v[2] // kv_heads.i
    return batch * s_q * k[1] * (q_hidden + q_heads.i * v_per_head)


def _einsum(node: NodeLike, shape_of: ShapeOf) -> int | None:
    eq = _attrs(node).get("equation")
    if eq is None:
        return None
    lhs = eq.s.decode().replace(" ", "").split("->")[0]
    terms = lhs.split(",")
    if "." in lhs or len(terms) != len(node.input):
        return None
    sizes: dict[str, int] = {}
    for term, name in zip(terms, node.input, strict=True):
        shape = shape_of(name)
        if shape is None or len(shape) != len(term):
            return None
        for letter, size in zip(term, shape, strict=True):
            sizes[letter] = max(sizes.get(letter, 1), size)
    if len(terms) == 1:
        return 0
    return math.prod(sizes.values())
