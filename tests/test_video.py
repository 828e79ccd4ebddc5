"""Video and camera colorization: clips are generated here with PyAV (no binaries in the repository)."""

import os
import threading

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from edge_colorizer.colorizer import ColorizerModule, GrayBaseline

av = pytest.importorskip("av")

from edge_colorizer.temporal import TemporalSmoother, evaluate_temporal, flicker, pan_zoom_clip, to_gray  # noqa: E402
from edge_colorizer.video import (  # noqa: E402
    VideoError,
    VideoSink,
    colorize_video,
    partial_path,
    run_camera,
    torch_colorize,
)


class ConstantAB(torch.nn.Module):
    def forward(self, l_norm):
        return torch.tensor([0.3, 0.25]).view(1, 2, 1, 1).expand(l_norm.shape[0], 2, *l_norm.shape[-2:])


def write_clip(path, frames=20, size=(48, 64), rate=24, rotation=0, audio=False, container=None, noise=False):
    """A moving gray bar on a gray ramp (or noise, which compresses badly); optionally a display
    rotation and a sine-wave AAC track."""
    h, w = size
    with av.open(str(path), "w", format=container) as out:
        video = out.add_stream("libx264", rate=rate, options={"preset": "ultrafast"})
        video.width, video.height, video.pix_fmt = w, h, "yuv420p"
        if rotation:
            video.set_display_rotation(rotation)
        sound = out.add_stream("aac", rate=16000) if audio else None
        ramp = np.linspace(40, 200, w, dtype=np.uint8)[None, :, None].repeat(h, 0).repeat(3, 2)
        rng = np.random.default_rng(0)
        for i in range(frames):
            img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8) if noise else ramp.copy()
            img[:, (3 * i) % w : (3 * i) % w + 6] = 230
            out.mux(video.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        if sound is not None:
            for i in range(int(frames / rate * 16000 / 1024) + 1):
                samples = np.sin(np.arange(1024, dtype=np.float32) / 7.0)[None]
                frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
                frame.sample_rate, frame.pts = 16000, i * 1024
                out.mux(sound.encode(frame))
            out.mux(sound.encode(None))
        out.mux(video.encode(None))
    return path


def describe(path):
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        rate, size = v.average_rate, (v.height, v.width)
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    with av.open(str(path)) as c:
        first = next(c.decode(video=0))
        audio = [p for p in c.demux(c.streams.audio[0]) if p.dts is not None] if c.streams.audio else []
    return {
        "rate": rate,
        "size": size,
        "frames": frames,
        "rotation": round(first.rotation or 0),
        "audio_packets": len(audio),
    }


@pytest.fixture
def colorize():
    return torch_colorize(ColorizerModule(ConstantAB(), size=32).eval())


def test_video_keeps_rate_size_rotation_and_audio(tmp_path, colorize):
    src = write_clip(tmp_path / "in.mp4", frames=20, rate=24, rotation=90, audio=True)
    out = tmp_path / "out" / "colour.mp4"
    seen = []
    report = colorize_video(src, out, colorize, batch=3, progress=seen.append)
    assert report.output == out and not report.partial and report.frames == 20 and sum(seen) == 20
    before, after = describe(src), describe(out)
    assert after["rate"] == before["rate"] == 24 and after["size"] == before["size"] == (48, 64)
    assert after["rotation"] == 90 and len(after["frames"]) == 20
    assert after["audio_packets"] == before["audio_packets"] > 0
    # colorized: the constant ab makes every frame clearly non-gray
    chroma = np.abs(after["frames"][5].astype(int) - after["frames"][5].mean(axis=2, keepdims=True)).mean()
    assert chroma > 5
    assert sorted(os.listdir(out.parent)) == ["colour.mp4"]  # no temporary left behind


def test_stages_run_in_their_own_threads(tmp_path):
    names = set()

    def spy(frames):
        names.add(threading.current_thread().name)
        return np.repeat(frames[..., :1], 3, axis=3)

    colorize_video(write_clip(tmp_path / "in.mkv", frames=9, container="matroska"), tmp_path / "o.mkv", spy, batch=4)
    assert names == {"video-colorize"}


def test_batch_size_does_not_change_the_frames(tmp_path, colorize):
    src = write_clip(tmp_path / "in.mp4", frames=10)
    one = describe(colorize_video(src, tmp_path / "a.mkv", colorize, batch=1).output)["frames"]
    many = describe(colorize_video(src, tmp_path / "b.mkv", colorize, batch=7).output)["frames"]
    assert len(one) == len(many) == 10
    assert max(int(np.abs(a.astype(int) - b).max()) for a, b in zip(one, many, strict=True)) <= 2


def test_corrupt_input_gives_a_finalised_partial_file_and_no_output(tmp_path, colorize):
    data = bytearray(write_clip(tmp_path / "in.mp4", frames=40, noise=True).read_bytes())
    middle = len(data) // 2  # inside the frames (the index is at the end)
    data[middle : middle + 3000] = np.random.default_rng(0).integers(0, 256, 3000, dtype=np.uint8).tobytes()
    (tmp_path / "bad.mp4").write_bytes(bytes(data))
    out = tmp_path / "o" / "colour.mp4"
    report = colorize_video(tmp_path / "bad.mp4", out, colorize)
    assert report.partial and 0 < report.frames < 40 and "bad.mp4" not in report.problem  # the CLI names the file
    assert report.output == partial_path(out) and not out.exists()
    assert len(describe(report.output)["frames"]) == report.frames  # a valid, playable file
    assert sorted(os.listdir(out.parent)) == ["colour.partial.mp4"]


def test_truncated_matroska_is_reported_partial(tmp_path, colorize):
    data = write_clip(tmp_path / "in.mkv", frames=40, container="matroska").read_bytes()
    (tmp_path / "cut.mkv").write_bytes(data[: len(data) * 6 // 10])
    report = colorize_video(tmp_path / "cut.mkv", tmp_path / "o.mkv", colorize)
    assert report.partial and "truncated" in report.problem and report.frames < 40
    assert not (tmp_path / "o.mkv").exists() and (tmp_path / "o.partial.mkv").exists()


@pytest.mark.parametrize("damage", ["truncated_mp4", "empty", "not_video", "missing", "photo"])
def test_unreadable_input_is_one_line_naming_the_file_and_nothing_is_written(tmp_path, colorize, damage):
    src = tmp_path / f"{damage}.mp4"
    if damage == "truncated_mp4":  # the index (moov) is at the end: nothing is decodable
        data = write_clip(tmp_path / "whole.mp4", frames=30).read_bytes()
        src.write_bytes(data[: len(data) // 2])
    elif damage == "empty":
        src.write_bytes(b"")
    elif damage == "not_video":
        src.write_text("hello\n")
    elif damage == "photo":  # a JPEG named .mp4: FFmpeg reads it as one frame; it is not a video
        Image.fromarray(np.full((48, 64, 3), 90, np.uint8)).save(src, format="JPEG")
    out = tmp_path / "out"
    with pytest.raises(VideoError) as info:
        colorize_video(src, out / "o.mp4", colorize)
    message = str(info.value)
    assert message.startswith(str(src)) and "\n" not in message
    assert message.count(src.name) == 1, message  # the file named once, not again inside FFmpeg's reason
    assert not out.exists() or os.listdir(out) == []


def test_the_input_is_never_overwritten(tmp_path, colorize):
    src = write_clip(tmp_path / "in.mp4", frames=5)
    before = src.read_bytes()
    with pytest.raises(VideoError, match="overwrite the input"):
        colorize_video(src, tmp_path / "." / "in.mp4", colorize)
    assert src.read_bytes() == before


def test_a_failing_colorizer_leaves_nothing(tmp_path):
    def broken(frames):
        raise RuntimeError("device lost")

    with pytest.raises(RuntimeError, match="device lost"):
        colorize_video(write_clip(tmp_path / "in.mp4", frames=12), tmp_path / "o" / "x.mp4", broken, batch=2)
    assert os.listdir(tmp_path / "o") == []


def test_an_output_under_a_file_is_one_line_before_any_frame(tmp_path, colorize):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(VideoError, match=r"afile is not a folder$"):
        colorize_video(write_clip(tmp_path / "in.mp4", frames=3), tmp_path / "afile" / "o.mp4", colorize)
    assert (tmp_path / "afile").read_text() == "x"


def test_unsupported_output_container(tmp_path, colorize):
    with pytest.raises(VideoError, match="container"):
        colorize_video(write_clip(tmp_path / "in.mp4", frames=3), tmp_path / "o.gif", colorize)


class FakeCapture:
    """What run_camera needs of cv2.VideoCapture: BGR frames from read(), then (False, None)."""

    def __init__(self, frames):
        self.frames = list(frames)

    def read(self):
        return (True, self.frames.pop(0)) if self.frames else (False, None)


def test_camera_loop_colorizes_reports_fps_and_stops():
    bgr = np.zeros((24, 32, 3), np.uint8)
    bgr[..., 2] = 200  # red in BGR order
    got, rates = [], []
    keep = lambda rgb: got.append(rgb) is None  # noqa: E731  (a sink that always goes on)
    report = run_camera(FakeCapture([bgr] * 10), lambda x: x, keep, on_fps=rates.append, report_every=0)
    assert report.frames == 10 and len(got) == 10 and rates and report.fps > 0
    assert got[0][0, 0].tolist() == [200, 0, 0]  # handed on as RGB
    assert run_camera(FakeCapture([bgr] * 10), lambda x: x, lambda rgb: True, max_frames=4).frames == 4
    assert run_camera(FakeCapture([bgr] * 10), lambda x: x, lambda rgb: False).frames == 1  # the sink stops it


def test_camera_stream_written_by_video_sink(tmp_path, colorize):
    sink = VideoSink(tmp_path / "cam.mp4", fps=15)
    frames = [np.full((48, 64, 3), 90, np.uint8)[..., ::-1].copy() for _ in range(8)]
    run_camera(FakeCapture(frames), colorize, sink)
    assert sink.close() == tmp_path / "cam.mp4"
    info = describe(tmp_path / "cam.mp4")
    assert info["rate"] == 15 and len(info["frames"]) == 8 and os.listdir(tmp_path) == ["cam.mp4"]


def test_smoother_averages_and_restarts_at_a_cut():
    smoother = TemporalSmoother(strength=0.5, cut=0.2)
    dark, bright = torch.full((1, 1, 8, 8), -0.4), torch.full((1, 1, 8, 8), 0.3)
    a, b = torch.zeros(1, 2, 4, 4), torch.ones(1, 2, 4, 4)
    assert torch.equal(smoother(dark, a), a)
    assert torch.allclose(smoother(dark, b), torch.full_like(b, 0.5))  # half the past
    assert torch.equal(smoother(bright, a), a) and smoother.cuts == 1  # another scene: the past is dropped
    both = smoother(torch.cat((bright, bright)), torch.cat((b, b)))  # a batch is taken in frame order
    assert torch.allclose(both[0], torch.full_like(b[0], 0.5)) and torch.allclose(both[1], torch.full_like(b[0], 0.75))
    with pytest.raises(ValueError):
        TemporalSmoother(strength=1.0)


def test_flicker_is_zero_for_the_truth_and_counts_changes_the_truth_lacks():
    truth = pan_zoom_clip(np.asarray(np.random.default_rng(0).integers(0, 256, (120, 160, 3)), np.uint8), 5, (24, 32))
    assert flicker(truth, truth) == (0.0, 1.0)
    still = np.repeat(truth[:1], 5, axis=0)  # no change at all
    excess, ratio = flicker(still, truth)
    assert ratio == 0.0 and excess > 0


def test_pan_zoom_clip_and_gray_keep_luminance(real_photos):
    clip = pan_zoom_clip(real_photos["coffee"], frames=6, size=(36, 64))
    assert clip.shape == (6, 36, 64, 3) and clip.dtype == np.uint8
    assert not np.array_equal(clip[0], clip[-1])  # it moves
    gray = to_gray(clip)
    assert gray.shape == (6, 36, 64, 1)
    from edge_colorizer.lab import rgb_to_lab

    L = rgb_to_lab(torch.from_numpy(clip).permute(0, 3, 1, 2).float() / 255)[:, 0]
    L_gray = rgb_to_lab(torch.from_numpy(gray).permute(0, 3, 1, 2).float().expand(-1, 3, -1, -1) / 255)[:, 0]
    assert (L - L_gray).abs().max() < 0.6


def test_evaluate_temporal_finds_the_cuts_and_smoothing_steadies(real_photos):
    photos = [real_photos["astronaut"], real_photos["coffee"], real_photos["chelsea"]]
    net = ColorizerModule(GrayBaseline(), size=32).eval()
    noisy = ColorizerModule(NoisyAB(), size=32).eval()
    calls = []
    results = evaluate_temporal(
        {"gray": net, "noisy": noisy},
        photos,
        strengths=(0.0, 0.7),
        frames=6,
        size=(36, 64),
        progress=lambda done, total: calls.append((done, total)),
    )
    assert calls == [(i, 12) for i in range(1, 13)]  # 2 models x 2 strengths x 3 clips
    by = {(r.model, r.smoothing): r for r in results}
    assert by[("gray", 0.0)].flicker > 0 and by[("gray", 0.7)].cuts_found == 2
    assert by[("noisy", 0.7)].flicker < by[("noisy", 0.0)].flicker  # smoothing removes frame-to-frame noise


def test_load_photos_names_each_photo_it_passes_over(tmp_path, real_photos):
    from edge_colorizer.temporal import load_photos

    Image.fromarray(real_photos["coffee"]).save(tmp_path / "a.png")
    (tmp_path / "b.png").write_bytes(b"not a png")
    Image.fromarray(real_photos["coffee"][..., :1].repeat(3, axis=2)).save(tmp_path / "c_gray.png")
    (tmp_path / "d.png").symlink_to(tmp_path / "nowhere.png")
    lines = []
    photos = load_photos(str(tmp_path), limit=6, log=lines.append)
    assert len(photos) == 1 and len(lines) == 3, lines
    assert all(line.startswith(f"skip {tmp_path}/") for line in lines)
    assert any("b.png: not an image" in x for x in lines) and any("c_gray.png: a gray photo" in x for x in lines)
    assert any("d.png: broken link" in x for x in lines)
    (tmp_path / "a.png").unlink()
    with pytest.raises(ValueError, match="no readable colour photos"):
        load_photos(str(tmp_path), log=lines.append)


class NoisyAB(torch.nn.Module):
    """Random ab every frame: the worst flicker."""

    def forward(self, l_norm):
        return (torch.rand(l_norm.shape[0], 2, *l_norm.shape[-2:]) - 0.5) * 0.6


def test_video_command(tmp_path):
    from edge_colorizer.cli import main

    src = write_clip(tmp_path / "in.mp4", frames=6, audio=True)
    runner = CliRunner()
    result = runner.invoke(
        main, ["video", str(src), "--out", str(tmp_path / "o.mp4"), "--smooth", "0.5", "--size", "32"]
    )
    assert result.exit_code == 0, result.output
    assert "6 frames" in result.output and len(describe(tmp_path / "o.mp4")["frames"]) == 6
    for args, message in [
        ([], "either a video file or --camera"),
        ([str(src)], "needs --out"),
        (["--camera", "0"], "--out, --show"),
        ([str(src), "--camera", "0"], "not both"),
        ([str(src), "--out", "x.mp4", "--runtime", "onnxruntime", "--smooth", "0.3"], "torch runtime only"),
    ]:
        result = runner.invoke(main, ["video", *args])
        assert result.exit_code == 2 and message in result.output


def test_video_command_reports_a_partial_video_with_exit_code_1(tmp_path):
    from edge_colorizer.cli import main

    data = bytearray(write_clip(tmp_path / "in.mp4", frames=40, noise=True).read_bytes())
    data[len(data) // 2 : len(data) // 2 + 3000] = np.random.default_rng(1).integers(0, 256, 3000, np.uint8).tobytes()
    (tmp_path / "bad.mp4").write_bytes(bytes(data))
    result = CliRunner().invoke(
        main, ["video", str(tmp_path / "bad.mp4"), "--out", str(tmp_path / "o.mp4"), "--size", "32"]
    )
    assert result.exit_code == 1 and "partial" in result.output
    assert (tmp_path / "o.partial.mp4").exists() and not (tmp_path / "o.mp4").exists()


@pytest.mark.gpu
def test_cuda_video_pipeline_matches_cpu(tmp_path):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    from edge_colorizer.inference import load_colorizer

    src = write_clip(tmp_path / "in.mp4", frames=8, size=(1080, 1920))
    cpu = describe(colorize_video(src, tmp_path / "cpu.mkv", torch_colorize(load_colorizer("student"))).output)
    gpu = colorize_video(src, tmp_path / "gpu.mkv", torch_colorize(load_colorizer("student", device="cuda")))
    frames = describe(gpu.output)["frames"]
    assert max(int(np.abs(a.astype(int) - b).max()) for a, b in zip(frames, cpu["frames"], strict=True)) <= 8


def test_a_signal_during_the_video_command_leaves_no_output(tmp_path, monkeypatch):
    import signal

    import edge_colorizer.video as video
    from edge_colorizer.cli import main

    src = write_clip(tmp_path / "in.mp4", frames=12)
    calls = []

    def colorize_then_sigterm(colorizer, smoother, batch):
        def run(frames):
            calls.append(len(frames))
            if len(calls) == 2:  # mid-video, as a user's kill would land
                os.kill(os.getpid(), signal.SIGTERM)
            return frames

        return run

    monkeypatch.setattr(video, "torch_colorize", colorize_then_sigterm)
    out = tmp_path / "o"
    result = CliRunner().invoke(main, ["video", str(src), "--out", str(out / "v.mp4"), "--batch", "2", "--size", "32"])
    assert result.exit_code == 128 + signal.SIGTERM and "stopped by SIGTERM" in result.stderr
    assert os.listdir(out) == [] and len(calls) >= 2  # no output, no temporary
