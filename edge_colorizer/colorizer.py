"""The RGB-in/RGB-out colorizer that every export traces: uint8 NHWC in, uint8 NHWC RGB out.

L is computed at full resolution, resized to the network size, the network predicts ab, ab is
upsampled back and recombined with the full-resolution L (richzhang/colorization's
``postprocess_tens``), all through the one Lab kernel in :mod:`edge_colorizer.lab`. At full
resolution only what the output needs is computed, through that kernel's uint8 tables: L from a
lookup per channel, and the output from fy, the upsampled ab and Y in a few channels-last passes.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from edge_colorizer.lab import (
    AB_NORM,
    L_CENT,
    L_NORM,
    BandKernel,
    denormalize_ab,
    lab_offsets_to_uint8,
    lab_to_rgb,
    luminance_tables,
    normalize_l,
    rgb_to_lab,
    srgb_code_table,
    uint8_luminance,
)

DEFAULT_SIZE = 256
# How L is shrunk to the network size; all give the antialiased triangle filter of torch/PIL:
#   interpolate: torch's own kernel (eager torch; not exportable at opset 17)
#   segments: each input row gathered once and weighted, O(H W); exportable with dynamic H and W
#   matrix: two dense matrix products, O(H W size); only MatMul, for runtimes that lack the others
#   auto: interpolate in eager torch, segments when traced or exported
RESIZE_FORMS = ("auto", "interpolate", "segments", "matrix")
# How the exported graph brings ab back to full resolution; both are F.interpolate(bilinear,
# align_corners=False) to float rounding:
#   resize: one bilinear Resize node (ONNX Runtime's fast form)
#   rows: a horizontal Resize at the network's height, then each output row blended from two gathered
#     rows; OpenVINO's CPU plugin fuses that blend into its element-wise kernels (1080p student-distilled,
#     2 threads: 43 -> 29 ms), where its 2-D Interpolate is the frame's largest node
UPSAMPLE_FORMS = ("resize", "rows")
# eager torch on CPU runs the per-pixel passes over bands of about this many pixels (cache-sized)
BAND_PIXELS = 1 << 17
_THREAD = threading.local()  # per thread: each module's BandKernel
# adjust(l_norm (N, 1, size, size), offsets (N, 2, h, w)) -> offsets, at the network's resolution
AdjustAB = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _triangle_weights(positions: torch.Tensor, out_size: int) -> torch.Tensor:
    """(out_size, n_in) antialiased bilinear weights; ``positions`` is 0..n_in-1 as a float tensor.

    The triangle filter is stretched by the scale when shrinking (as PIL and torch's
    ``antialias=True``), so each output pixel averages its whole footprint.
    """
    n_in = positions[-1:] + 1.0
    scale = n_in / out_size
    support = scale.clamp(min=1.0)
    centers = (torch.arange(out_size, dtype=positions.dtype, device=positions.device) + 0.5)[:, None] * scale
    w = (1.0 - ((positions[None, :] + 0.5 - centers) / support).abs()).clamp(min=0.0)
    return w / w.sum(dim=1, keepdim=True)


def resize_antialiased(x: torch.Tensor, size: int) -> torch.Tensor:
    """Resize (N, C, H, W) to (N, C, size, size) like ``F.interpolate(bilinear, antialias=True)``.

    Written as two matrix products over index ramps, so the exported graph keeps dynamic H and W
    with only MatMul and elementwise ops, which every runtime supports; it costs O(H W size).
    """
    rows = torch.arange(x.shape[-2], dtype=x.dtype, device=x.device)
    cols = torch.arange(x.shape[-1], dtype=x.dtype, device=x.device)
    return _triangle_weights(rows, size) @ x @ _triangle_weights(cols, size).T


def _resize_rows_segments(x: torch.Tensor, size: int) -> torch.Tensor:
    """(..., n, W) -> (..., size, W) with the antialiased triangle filter, each input row read once.

    Shrinking by s = n / size >= 1, the output centres are s apart and the filter's support is s, so
    input row j lies between two centres, a_j and a_j + 1, with weights u_j and 1 - u_j. The rows
    whose a_j is equal form a run of at most floor(s) + 1 rows: the runs are gathered into a
    (size + 1, floor(s) + 1) grid (padding masked), weighted by one batched product, and each output
    adds its own run's u-part to the previous run's (1 - u)-part. Enlarging (s < 1), the filter is
    two-tap bilinear. Sizes come from the shape, so tracing and torch.export keep them dynamic.
    """
    n = x.shape[-2]
    j = torch.arange(n, dtype=x.dtype, device=x.device)
    n_f = j[-1:] + 1.0
    s = n_f / size
    t = (j + 0.5) / s - 0.5
    a = t.floor()
    u = 1.0 - (t - a)
    runs = torch.arange(-1, size, dtype=x.dtype, device=x.device)  # run -1 holds the rows before centre 0
    start = (a < runs[:, None]).to(x.dtype).sum(1)
    stop = torch.cat((start[1:], n_f))
    taps = torch.arange(n // size + 1, dtype=x.dtype, device=x.device)
    pos = start[:, None] + taps
    inside = (pos < stop[:, None]).to(x.dtype)
    index = torch.minimum(pos, n_f - 1.0).to(torch.int64)
    u_taps = u[index] * inside
    weights = torch.stack((u_taps, inside - u_taps), dim=1)  # (size + 1, 2, taps)
    grid = x.index_select(-2, index.flatten()).unflatten(-2, (size + 1, -1))  # (..., size + 1, taps, W)
    sums = weights @ grid  # (..., size + 1, 2, W)
    norm = weights.sum(-1)
    # when enlarging, this branch is computed but not selected: keep it finite (no 0/0), as INT8
    # calibrators read every intermediate tensor's range
    shrunk = (sums[..., 1:, 0, :] + sums[..., :-1, 1, :]) / (norm[1:, 0] + norm[:-1, 1]).clamp(min=1e-6)[:, None]
    centres = (torch.arange(size, dtype=x.dtype, device=x.device) + 0.5) * s - 0.5
    left = centres.floor()
    frac = (centres - left)[:, None]
    i0 = torch.minimum(left.clamp(min=0.0), n_f - 1.0).to(torch.int64)
    i1 = torch.minimum((left + 1.0).clamp(min=0.0), n_f - 1.0).to(torch.int64)
    enlarged = torch.lerp(x.index_select(-2, i0), x.index_select(-2, i1), frac)
    return torch.where(s >= 1.0, shrunk, enlarged)


def resize_segments(x: torch.Tensor, size: int) -> torch.Tensor:
    """Resize (N, C, H, W) to (N, C, size, size) like ``resize_antialiased``, in O(H W): rows, then columns."""
    rows = _resize_rows_segments(x, size)
    return _resize_rows_segments(rows.transpose(-1, -2), size).transpose(-1, -2)


def _bands(like: torch.Tensor):
    """(image, row slice) pairs covering (N, H, W) in bands of about BAND_PIXELS pixels."""
    n, h, w = like.shape
    step = max(1, BAND_PIXELS // max(w, 1))
    for i in range(n):
        for r in range(0, h, step):
            yield i, slice(r, min(h, r + step))


def _row_taps(in_h: int, dst: torch.Tensor, height: torch.Tensor | int) -> tuple[torch.Tensor, ...]:
    """The two source rows and the second one's weight of output rows ``dst`` (float) of a bilinear
    upsampling of ``in_h`` rows to ``height`` (``F.interpolate(bilinear, align_corners=False)``)."""
    src = ((dst + 0.5) * (in_h / height) - 0.5).clamp(min=0.0)  # as torch computes the source row
    top = src.to(torch.int64)  # src >= 0: truncation is the floor
    bottom = (top + 1).clamp(max=in_h - 1)
    return top, bottom, src - top


def _upsample_rows(wide: torch.Tensor, height: int, rows: slice, out: torch.Tensor) -> torch.Tensor:
    """Rows ``rows`` of a bilinear upsampling to ``height`` rows of ``wide`` (h, C, W), which is already
    at the output width: the vertical half of ``F.interpolate(bilinear, align_corners=False)``, into
    ``out`` (len(rows), C, W). A band never needs the full-frame upsampled tensor."""
    dst = torch.arange(rows.start, rows.stop, dtype=wide.dtype, device=wide.device)
    top, bottom, weight = _row_taps(wide.shape[0], dst, height)
    return torch.lerp(wide.index_select(0, top), wide.index_select(0, bottom), weight[:, None, None], out=out)


def upsample_bilinear(x: torch.Tensor, size: tuple, form: str = "resize") -> torch.Tensor:
    """(N, C, h, w) -> (N, C, *size), bilinear, half-pixel centres, as ``F.interpolate(align_corners=False)``,
    in one of the ``UPSAMPLE_FORMS``. Output sizes stay dynamic when traced or exported."""
    if form == "resize":
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False)
    if form != "rows":
        raise ValueError(f"unknown upsample form {form!r}; known: {', '.join(UPSAMPLE_FORMS)}")
    wide = F.interpolate(x, size=(x.shape[-2], size[1]), mode="bilinear", align_corners=False)
    # the output height as a tensor, from the ramp: an exporter then keeps it dynamic (a Python int
    # taken from the shape would be frozen into the graph by the TorchScript tracer). The positions are
    # float32 whatever x's type, as in torch's own kernel: in fp16 or bf16 a 1080p frame's rows would be
    # rounded to other rows
    dst = torch.arange(size[0], dtype=torch.float32, device=x.device)
    top, bottom, weight = _row_taps(x.shape[-2], dst, dst[-1:] + 1.0)
    return torch.lerp(wide.index_select(-2, top), wide.index_select(-2, bottom), weight.to(x.dtype)[:, None])


def _exporting() -> bool:
    return torch.jit.is_tracing() or torch.compiler.is_compiling() or torch.onnx.is_in_onnx_export()


def resize_l(x: torch.Tensor, size: int, form: str = "auto") -> torch.Tensor:
    """Shrink (or enlarge) (N, C, H, W) to (N, C, size, size) with the antialiased triangle filter."""
    if form == "auto":
        form = "segments" if _exporting() else "interpolate"
    if form == "interpolate":
        return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    if form == "segments":
        return resize_segments(x, size)
    if form == "matrix":
        return resize_antialiased(x, size)
    raise ValueError(f"unknown resize form {form!r}; known: {', '.join(RESIZE_FORMS)}")


class ColorizerModule(nn.Module):
    """Wraps an ab-predicting network into ``uint8 (N, H, W, C) -> uint8 (N, H, W, 3)``, C in {1, 3}.

    ``resize`` picks how L is shrunk to the network size (see ``RESIZE_FORMS``) and ``upsample`` how
    the exported graph enlarges ab (see ``UPSAMPLE_FORMS``); every form gives the same result to float
    rounding.
    """

    def __init__(self, net: nn.Module, size: int = DEFAULT_SIZE, resize: str = "auto", upsample: str = "resize"):
        super().__init__()
        if size < 16 or size % 8:
            raise ValueError(f"network size must be a multiple of 8 and >= 16, got {size}")
        if resize not in RESIZE_FORMS:
            raise ValueError(f"unknown resize form {resize!r}; known: {', '.join(RESIZE_FORMS)}")
        if upsample not in UPSAMPLE_FORMS:
            raise ValueError(f"unknown upsample form {upsample!r}; known: {', '.join(UPSAMPLE_FORMS)}")
        self.net = net
        self.size = size
        self.resize = resize
        self.upsample = upsample
        y_table, f_table = luminance_tables()
        # constants of the graph, moved with .to(); not part of any checkpoint. Made on the network's
        # device: wrapping a network that already sits on a GPU gives a module that runs there (the
        # training loop's validation and sample grids do this; found on the first GPU run)
        at = next(net.parameters(), torch.empty(0)).device
        self.register_buffer("y_table", y_table.to(at), persistent=False)
        self.register_buffer("f_table", f_table.to(at), persistent=False)
        self.register_buffer("srgb_table", srgb_code_table().to(at), persistent=False)

    @property
    def device(self) -> torch.device:
        tensor = next(self.parameters(), None)
        tensor = tensor if tensor is not None else next(self.buffers(), None)
        return tensor.device if tensor is not None else torch.device("cpu")

    def with_forms(
        self, resize: str | None = None, upsample: str | None = None, size: int | None = None
    ) -> ColorizerModule:
        """The same network with other resize/upsample forms (for a runtime that needs them) or another
        network size (an artifact's); what is not given stays as it is."""
        module = ColorizerModule(
            self.net, size=size or self.size, resize=resize or self.resize, upsample=upsample or self.upsample
        )
        return module.to(self.device).train(self.training)

    def _check(self, images: torch.Tensor) -> None:
        if images.dim() != 4 or images.shape[-1] not in (1, 3):
            raise ValueError(f"expected uint8 images of shape (N, H, W, 1|3), got {tuple(images.shape)}")
        if images.dtype != torch.uint8:
            raise TypeError(f"expected uint8 images, got {images.dtype}")

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.colorize(images)

    def colorize(self, images: torch.Tensor, adjust: AdjustAB | None = None) -> torch.Tensor:
        """``forward`` with an optional ``adjust(l_norm, offsets) -> offsets`` applied at the network's
        resolution before upsampling (video smoothing uses it); ``l_norm`` is the network's input."""
        if _exporting() or images.device.type != "cpu":  # one graph over the whole batch
            return self._forward_graph(images, adjust)
        with torch.no_grad():  # the output is uint8: nothing to differentiate, and out= needs no autograd
            return self._forward_bands(images, adjust)

    def _forward_graph(self, images: torch.Tensor, adjust: AdjustAB | None = None) -> torch.Tensor:
        """What exporters trace: whole tensors, no Python loops, shapes dynamic."""
        y, fy = self.luminance(images)
        offsets = upsample_bilinear(self.predict_f_offsets(fy, adjust), fy.shape[-2:], self.upsample)
        return lab_offsets_to_uint8(fy, y, offsets, self.srgb_table)

    def _forward_bands(self, images: torch.Tensor, adjust: AdjustAB | None = None) -> torch.Tensor:
        """Eager torch on the CPU: the same arithmetic, per band of rows, in place."""
        y, fy = self.luminance(images)
        small = self.predict_f_offsets(fy, adjust)
        n, height, width = fy.shape
        # the horizontal half of the bilinear upsampling once, at the network's height, laid out
        # (n, h, 2, W) so that a band gathers whole rows; the vertical half band by band
        wide = F.interpolate(small.transpose(1, 2).flatten(0, 1), size=width, mode="linear")
        wide = wide.view(n, -1, 2, width)
        out = torch.empty((n, height, width, 3), dtype=torch.uint8)
        kernel = self._band_kernel()
        for i, rows in _bands(fy):
            f = _upsample_rows(wide[i], height, rows, kernel.buffer("f", (rows.stop - rows.start, 2, width)))
            kernel.to_uint8(fy[i, rows], y[i, rows], f, out[i, rows])
        return out

    def _band_kernel(self) -> BandKernel:
        """This thread's in-place kernel for this module (its scratch buffers live as long as both)."""
        kernels = _THREAD.__dict__.setdefault("kernels", weakref.WeakKeyDictionary())
        kernel = kernels.get(self)
        if kernel is None or kernel.y_table is not self.y_table:  # new, or the module was moved
            kernel = kernels[self] = BandKernel(self.y_table, self.f_table, self.srgb_table)
        return kernel

    def luminance(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 (N, H, W, C) -> (Y * Y_BINS, fy), both (N, H, W) float32; L = 116 fy - 16."""
        if _exporting():  # checks would fix the channel count of the graph
            return uint8_luminance(images, self.y_table, self.f_table)
        self._check(images)
        if images.device.type != "cpu":
            return uint8_luminance(images, self.y_table, self.f_table)
        y = torch.empty(images.shape[:3], dtype=self.f_table.dtype)
        fy = torch.empty_like(y)
        kernel = self._band_kernel()
        for n, rows in _bands(y):
            kernel.luminance(images[n, rows], y[n, rows], fy[n, rows])
        return y, fy

    def predict_f_offsets(self, fy: torch.Tensor, adjust: AdjustAB | None = None) -> torch.Tensor:
        """fy (N, H, W) -> the network's fx - fy and fz - fy, (N, 2, h, w) at the network's output size."""
        # L_small normalised, (116 fy - 16 - L_CENT) / L_NORM, from the resized fy (the filter is linear)
        l_norm = resize_l(fy.unsqueeze(1), self.size, self.resize) * (116.0 / L_NORM) - (16.0 + L_CENT) / L_NORM
        ab_norm = self.net(l_norm)
        scale = torch.tensor((AB_NORM / 500.0, -AB_NORM / 200.0), dtype=ab_norm.dtype, device=ab_norm.device)
        offsets = ab_norm * scale[:, None, None]
        return adjust(l_norm, offsets) if adjust is not None else offsets

    def predict_lab(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (N, H, W, C) -> Lab (N, 3, H, W) float32 with the predicted ab."""
        _, fy = self.luminance(images)
        L = (116.0 * fy - 16.0).unsqueeze(1)
        ab_small = denormalize_ab(self.net(normalize_l(resize_l(L, self.size, self.resize))))
        ab = F.interpolate(ab_small, size=L.shape[-2:], mode="bilinear", align_corners=False)
        return torch.cat((L, ab), dim=1)


def colorize_reference(net: nn.Module, size: int, images: torch.Tensor) -> torch.Tensor:
    """The colorizer written directly with the float Lab kernel: the definition the fast path is tested
    and benchmarked against (uint8 NHWC in and out, like ``ColorizerModule``)."""
    x = (images.permute(0, 3, 1, 2).float() / 255.0).expand(-1, 3, -1, -1)
    L = rgb_to_lab(x)[:, :1]
    ab_small = denormalize_ab(net(normalize_l(resize_antialiased(L, size))))
    ab = F.interpolate(ab_small, size=L.shape[-2:], mode="bilinear", align_corners=False)
    rgb = lab_to_rgb(torch.cat((L, ab), dim=1))
    return (rgb * 255.0).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1)


class GrayBaseline(nn.Module):
    """The floor every number is compared with: ab = 0 (the input's own luminance, no colour)."""

    def forward(self, l_norm: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(l_norm).expand(-1, 2, -1, -1)


class _HalfNetwork(nn.Module):
    """The network in fp16 between fp32 Lab math: L in, ab out, both cast at the boundary."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net.half()

    def forward(self, l_norm: torch.Tensor) -> torch.Tensor:
        return self.net(l_norm.half()).float()


class CudaFramePipeline:
    """The whole frame pipeline on a CUDA device for one input shape: uint8 (N, H, W, C) in, uint8
    (N, H, W, 3) out, under ``torch.compile`` with CUDA graphs (``mode="reduce-overhead"``), the network
    in fp16 and the Lab math (tables, upsampling, recombination) in fp32, where its precision holds.

    Not run in this repository's CI or development machines (no GPU): see README.
    """

    def __init__(
        self,
        colorizer: ColorizerModule,
        batch: int,
        height: int,
        width: int,
        channels: int = 3,
        half: bool = True,
        compiled: bool = True,
        device: str = "cuda",
    ):
        import copy

        if torch.device(device).type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("CudaFramePipeline needs a CUDA device; torch sees none")
        net = copy.deepcopy(colorizer.net).eval()
        net = _HalfNetwork(net) if half else net
        self.module = ColorizerModule(net, size=colorizer.size, resize="interpolate").to(device).eval()
        self.shape = (batch, height, width, channels)
        run = self.module._forward_graph
        if compiled:
            # every pipeline compiles the same code object for its own shape: dynamo's default limit of 8
            # graphs per code object made the ninth pipeline of one process run eager (seen on an H200)
            from torch import _dynamo

            _dynamo.config.recompile_limit = max(_dynamo.config.recompile_limit, 64)
        self.run = torch.compile(run, mode="reduce-overhead", dynamic=False) if compiled else run
        warm = torch.zeros(self.shape, dtype=torch.uint8, device=device)
        with torch.inference_mode():
            for _ in range(3):  # compile, record the CUDA graph, replay once
                self.run(warm)
        if torch.device(device).type == "cuda":
            torch.cuda.synchronize()

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        if tuple(images.shape) != self.shape:
            raise ValueError(f"this pipeline was built for {self.shape}, got {tuple(images.shape)}")
        with torch.inference_mode():
            # a CUDA graph's output is overwritten by its next replay: hand out a copy
            return self.run(images).clone()
