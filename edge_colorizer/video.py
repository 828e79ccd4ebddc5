"""Colorize videos and camera streams.

A video goes through three stages in their own threads, joined by bounded queues so that the
slowest one sets the pace: PyAV (FFmpeg) decoding, batched colorization, encoding. The output keeps
the input's frame timestamps (hence its frame rate), size and rotation, and its audio packets are
remuxed untouched. It is written under a temporary name and renamed when complete; an input that
turns out corrupt or truncated part-way gives a finalised, playable ``NAME.partial.EXT`` holding the
frames decoded before the damage, reported as partial, and no ``NAME.EXT``. PyAV (the ``video``
extra) is imported only here, when a video is opened.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from edge_colorizer.colorizer import ColorizerModule
from edge_colorizer.io import check_writable_file, default_file_mode, one_line, same_file, shown, temporary_name

if TYPE_CHECKING:
    from edge_colorizer.temporal import TemporalSmoother

# output containers by suffix (FFmpeg muxer names)
CONTAINERS = {".mp4": "mp4", ".mov": "mov", ".mkv": "matroska", ".avi": "avi"}
DEFAULT_BATCH = 4
# a batch of uint8 frames (N, H, W, 3) -> colorized uint8 frames of the same shape
Colorize = Callable[[np.ndarray], np.ndarray]


class VideoError(ValueError):
    """A video that cannot be colorized; the message is one line that starts with the file name."""


@dataclass
class VideoReport:
    source: Path
    output: Path | None  # None: nothing was written
    frames: int = 0
    seconds: float = 0.0
    partial: bool = False  # the input ended in damage: ``output`` holds the frames before it
    problem: str = ""  # one line, when partial

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def _av():
    try:
        import av
    except ImportError:
        raise ImportError("video needs PyAV: pip install 'edge-colorizer[video]'") from None
    return av


def partial_path(out: Path) -> Path:
    return out.with_name(f"{out.stem}.partial{out.suffix}")


# ---- colorize callables --------------------------------------------------------------------------


def torch_colorize(
    colorizer: ColorizerModule, smoother: TemporalSmoother | None = None, batch: int = DEFAULT_BATCH
) -> Colorize:
    """torch, eager on the CPU; on a CUDA device without smoothing, the compiled CUDA-graph pipeline
    (one per frame size; a short batch is padded to ``batch`` frames)."""
    device = colorizer.device
    if device.type == "cuda" and smoother is None:
        return _cuda_colorize(colorizer, batch)

    def run(frames: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            x = torch.from_numpy(np.require(frames, requirements=["C", "W"])).to(device)
            return colorizer.colorize(x, adjust=smoother).cpu().numpy()

    return run


def probe_frames(source: str | Path) -> int | None:
    """The number of frames ``source`` declares (or its duration times its rate); None if unknown."""
    av = _av()
    try:
        with av.open(str(source)) as container:
            return _expected_frames(container, container.streams.video[0])[0] or None
    except (av.FFmpegError, OSError, IndexError, UnicodeDecodeError):
        return None


def _cuda_colorize(colorizer: ColorizerModule, batch: int) -> Colorize:
    from edge_colorizer.colorizer import CudaFramePipeline

    pipelines: dict[tuple[int, ...], CudaFramePipeline] = {}

    def run(frames: np.ndarray) -> np.ndarray:
        n, h, w, c = frames.shape
        key = (batch, h, w, c)
        if key not in pipelines:
            pipelines[key] = CudaFramePipeline(colorizer, batch, h, w, c)
        x = torch.from_numpy(np.require(frames, requirements=["C", "W"])).pin_memory().cuda(non_blocking=True)
        if n < batch:  # the last batch: padded with its last frame, the padding dropped again
            x = torch.cat((x, x[-1:].expand(batch - n, -1, -1, -1)))
        return pipelines[key](x)[:n].cpu().numpy()

    return run


# ---- the three stages ----------------------------------------------------------------------------

_END = object()


@dataclass
class _Frames:
    rgb: np.ndarray  # (N, H, W, 3) uint8
    pts: list[int | None]
    time_base: object


@dataclass
class _Damage:
    message: str


@dataclass
class _Failure:
    exc: BaseException


class _Pipeline:
    """Reader and colorizer threads feeding the caller's writer loop through bounded queues."""

    def __init__(self, container, video, audio, colorize: Colorize, batch: int, depth: int):
        self.container, self.video, self.audio = container, video, audio
        self.colorize, self.batch = colorize, batch
        self.decoded: queue.Queue = queue.Queue(maxsize=depth * batch)
        self.colorized: queue.Queue = queue.Queue(maxsize=depth)
        self.stop = threading.Event()
        self.frames_decoded = 0
        self.rotation: int | None = None
        self.threads = [
            threading.Thread(target=self._read, name="video-decode", daemon=True),
            threading.Thread(target=self._infer, name="video-colorize", daemon=True),
        ]

    def _put(self, q: queue.Queue, item) -> bool:
        while not self.stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _read(self) -> None:
        av = _av()
        streams = [s for s in (self.video, self.audio) if s is not None]
        try:
            for packet in self.container.demux(streams):
                if self.stop.is_set():
                    return
                if packet.stream is self.video:
                    for frame in packet.decode():
                        if self.rotation is None:  # the display matrix rides on the frames
                            self.rotation = int(round(frame.rotation or 0))
                        rgb = frame.to_ndarray(format="rgb24")
                        self.frames_decoded += 1
                        if not self._put(self.decoded, (rgb, frame.pts, frame.time_base)):
                            return
                elif packet.dts is not None:  # audio: remuxed as is (the final empty packet is not)
                    self._put(self.decoded, packet)
            expected, exact = _expected_frames(self.container, self.video)
            # a frame count from the header is exact; one from duration x rate is allowed some slack
            if expected and self.frames_decoded < expected - (0 if exact else max(2, expected // 50)):
                about = "" if exact else "about "
                message = f"truncated or damaged: {self.frames_decoded} of {about}{expected} frames decoded"
                self._put(self.decoded, _Damage(message))
        except av.FFmpegError as exc:
            self._put(self.decoded, _Damage(f"damaged after {self.frames_decoded} frames ({one_line(exc)})"))
        except BaseException as exc:  # noqa: BLE001  (handed to the writer, which raises it)
            self._put(self.decoded, _Failure(exc))
        finally:
            self._put(self.decoded, _END)

    def _flush(self, pending: list) -> bool:
        if not pending:
            return True
        try:
            rgb = self.colorize(np.stack([f[0] for f in pending]))
        except BaseException as exc:  # noqa: BLE001
            self._put(self.colorized, _Failure(exc))
            return False
        ok = self._put(self.colorized, _Frames(rgb, [f[1] for f in pending], pending[0][2]))
        pending.clear()
        return ok

    def _infer(self) -> None:
        pending: list = []
        while not self.stop.is_set():
            try:
                item = self.decoded.get(timeout=0.1)
            except queue.Empty:
                continue
            if isinstance(item, tuple):
                if pending and pending[0][0].shape != item[0].shape:  # a size change: new batch
                    if not self._flush(pending):
                        return
                pending.append(item)
                if len(pending) >= self.batch and not self._flush(pending):
                    return
                continue
            if (item is _END or isinstance(item, _Damage)) and not self._flush(pending):
                return
            self._put(self.colorized, item)
            if item is _END:
                return

    def __iter__(self) -> Iterator:
        for t in self.threads:
            t.start()
        while True:
            item = self.colorized.get()
            if item is _END:
                return
            yield item

    def close(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=5)


def _expected_frames(container, video) -> tuple[int, bool]:
    """The frame count the input declares (exact), else its duration times its frame rate, else 0."""
    if video.frames:
        return int(video.frames), True
    if container.duration and video.average_rate:
        return round(container.duration / 1e6 * float(video.average_rate)), False
    return 0, False


def _video_codec(av, width: int, height: int) -> tuple[str, str, dict]:
    codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
    if codec == "libx264":
        pix_fmt = "yuv420p" if width % 2 == 0 and height % 2 == 0 else "yuv444p"
        return codec, pix_fmt, {"crf": "18", "preset": "veryfast"}
    return codec, "yuv420p", {"qscale": "2"}


def colorize_video(
    source: str | Path,
    out: str | Path,
    colorize: Colorize,
    batch: int = DEFAULT_BATCH,
    progress: Callable[[int], None] | None = None,
    queue_depth: int = 2,
) -> VideoReport:
    """Colorize ``source`` into ``out``; raises VideoError (one line, naming the file) for an input that
    cannot be read at all, and returns a partial report for one damaged part-way (see the module)."""
    av = _av()
    source, out = Path(source), Path(out)
    fmt = CONTAINERS.get(out.suffix.lower())
    if fmt is None:
        raise VideoError(
            f"{shown(out)}: unsupported output container {shown(out.suffix or '(none)')}; "
            f"use one of {', '.join(CONTAINERS)}"
        )
    for target in (out, partial_path(out)):
        if target.resolve() == source.resolve() or same_file(target, source):
            raise VideoError(f"{shown(source)}: the output {shown(target)} would overwrite the input")
    if not source.is_file():
        raise VideoError(f"{shown(source)}: no such file")
    try:  # before any frame: a folder, a path under a file, no permission
        check_writable_file(out)
    except ValueError as exc:
        raise VideoError(str(exc)) from None
    try:
        container = av.open(str(source), metadata_errors="replace")
    except (av.FFmpegError, OSError, UnicodeDecodeError) as exc:
        # FFmpeg's errors carry the file name again; its reason alone reads as one line after ours
        reason = getattr(exc, "strerror", None) or one_line(exc)
        raise VideoError(f"{shown(source)}: not a readable video ({reason})") from None
    with container:
        if container.format.name == "image2" or container.format.name.endswith("_pipe"):
            raise VideoError(f"{shown(source)}: a still image ({container.format.name}), not a video")
        if not container.streams.video:
            raise VideoError(f"{shown(source)}: no video stream")
        video = container.streams.video[0]
        video.thread_type = "AUTO"
        audio = container.streams.audio[0] if container.streams.audio else None
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.parent / temporary_name(out)
        report = VideoReport(source, None)
        pipeline = _Pipeline(container, video, audio, colorize, batch, queue_depth)
        t0 = time.perf_counter()
        try:
            report = _write(av, pipeline, video, audio, tmp, fmt, report, progress)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        finally:
            pipeline.close()
        report.seconds = time.perf_counter() - t0
    if report.frames == 0:
        tmp.unlink(missing_ok=True)
        problem = report.problem or "no frames"
        raise VideoError(f"{shown(source)}: no frame could be decoded ({problem}); nothing written")
    final = partial_path(out) if report.partial else out
    os.chmod(tmp, default_file_mode())
    os.replace(tmp, final)
    report.output = final
    return report


def _write(av, pipeline: _Pipeline, video, audio, tmp: Path, fmt: str, report: VideoReport, progress) -> VideoReport:
    with av.open(str(tmp), mode="w", format=fmt) as target:
        # every stream exists before the first packet is muxed (the header is written then)
        codec, pix_fmt, options = _video_codec(av, video.width, video.height)
        stream = target.add_stream(codec, rate=video.average_rate or video.guessed_rate or 25, options=options)
        stream.width, stream.height, stream.pix_fmt = video.width, video.height, pix_fmt
        stream.time_base = video.time_base
        audio_out = target.add_stream_from_template(audio) if audio is not None else None
        done = 0
        held: list | None = []  # audio packets until the first frame: the header waits for the rotation
        for item in pipeline:
            if isinstance(item, _Failure):
                raise item.exc
            if isinstance(item, _Damage):
                report.partial, report.problem = True, item.message
                continue
            if not isinstance(item, _Frames):  # an audio packet
                item.stream = audio_out
                if held is None:
                    target.mux(item)
                else:
                    held.append(item)
                continue
            if held is not None:  # the rotation is known once a frame was decoded
                if pipeline.rotation:
                    stream.set_display_rotation(pipeline.rotation)
                first = av.VideoFrame.from_ndarray(np.ascontiguousarray(item.rgb[0]), format="rgb24")
                first.pts, first.time_base = item.pts[0], item.time_base
                target.mux(stream.encode(first))
                target.mux(held)
                held = None
                item = _Frames(item.rgb[1:], item.pts[1:], item.time_base)
                report.frames += 1
            for rgb, pts in zip(item.rgb, item.pts, strict=True):
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
                frame.pts, frame.time_base = pts, item.time_base
                target.mux(stream.encode(frame))
            report.frames += len(item.pts)
            if progress:
                progress(report.frames - done)
            done = report.frames
        target.mux(stream.encode(None))
    return report


# ---- camera --------------------------------------------------------------------------------------


@dataclass
class CameraReport:
    frames: int = 0
    seconds: float = 0.0
    fps_history: list[float] = field(default_factory=list)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def run_camera(
    capture,
    colorize: Colorize,
    sink: Callable[[np.ndarray], bool],
    max_frames: int = 0,
    report_every: float = 1.0,
    on_fps: Callable[[float], None] | None = None,
) -> CameraReport:
    """Read BGR frames from an OpenCV-like ``capture`` (``read() -> (ok, frame)``), colorize each, and
    hand the RGB result to ``sink`` (returns False to stop). Stops at the end of the stream, at
    ``max_frames`` (0: none), or when ``sink`` says so; reports frames per second to ``on_fps``."""
    report = CameraReport()
    t0 = last = time.perf_counter()
    since = 0
    while not max_frames or report.frames < max_frames:
        ok, bgr = capture.read()
        if not ok or bgr is None:
            break
        rgb = np.ascontiguousarray(bgr[..., ::-1]) if bgr.ndim == 3 else np.repeat(bgr[..., None], 3, axis=2)
        keep_going = sink(colorize(rgb[None])[0])
        report.frames += 1
        since += 1
        now = time.perf_counter()
        if now - last >= report_every:
            fps = since / (now - last)
            report.fps_history.append(fps)
            if on_fps:
                on_fps(fps)
            last, since = now, 0
        if not keep_going:
            break
    report.seconds = time.perf_counter() - t0
    return report


class VideoSink:
    """Encodes RGB frames at a fixed frame rate into a file, through a temporary renamed when closed."""

    def __init__(self, out: str | Path, fps: float):
        av = _av()
        self.out = Path(out)
        fmt = CONTAINERS.get(self.out.suffix.lower())
        if fmt is None:
            raise VideoError(f"{shown(self.out)}: unsupported output container; use one of {', '.join(CONTAINERS)}")
        check_writable_file(self.out)
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = self.out.parent / temporary_name(self.out)
        self.av, self.fps = av, fps
        self.container = av.open(str(self.tmp), mode="w", format=fmt)
        self.stream = None
        self.frames = 0

    def __call__(self, rgb: np.ndarray) -> bool:
        if self.stream is None:
            from fractions import Fraction

            codec, pix_fmt, options = _video_codec(self.av, rgb.shape[1], rgb.shape[0])
            rate = Fraction(self.fps).limit_denominator(1001)
            self.stream = self.container.add_stream(codec, rate=rate, options=options)
            self.stream.width, self.stream.height, self.stream.pix_fmt = rgb.shape[1], rgb.shape[0], pix_fmt
        frame = self.av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        frame.pts, frame.time_base = self.frames, 1 / self.stream.average_rate
        self.container.mux(self.stream.encode(frame))
        self.frames += 1
        return True

    def close(self, keep: bool = True) -> Path | None:
        try:
            if self.stream is not None:
                self.container.mux(self.stream.encode(None))
            self.container.close()
        except BaseException:
            self.tmp.unlink(missing_ok=True)
            raise
        if not keep or self.frames == 0:
            self.tmp.unlink(missing_ok=True)
            return None
        os.chmod(self.tmp, default_file_mode())
        os.replace(self.tmp, self.out)
        return self.out
