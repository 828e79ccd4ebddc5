"""Turn a trained checkpoint into a release: choose the decoding temperature (and, if asked, the network
input size and a chroma gain) on validation photos and write the weights in fp16.

    python -m training.release runs/teacher/model.pt --val data/val --out edge_colorizer/weights/teacher_gan.pt

For a model with an ab-bins head, every temperature in ``--temperatures`` is scored on the validation
photos (PSNR, LPIPS, colorfulness ratio) at the network size the model runs at (the one stored with it,
else 256), or at each of ``--sizes``; the setting with the lowest LPIPS among those whose colorfulness
ratio reaches ``--min-cf-ratio`` is stored in the checkpoint (the temperature in its model arguments,
the size as its input size), so loading the file rebuilds the model as it was scored. A model with a
regression head has no temperature: it is scored once per size and none is stored (``--temperatures``
is refused). ``--chroma-gains`` adds the factor the decoded ab are multiplied by to the settings scored
(default: the model's own, 1 for a trained one): a model that comes out dull at every temperature
gains colour that way (the teacher card). ``--protocol paper`` scores each validation photo as the
benchmark's paper protocol does (resized to 256x256) instead of at its own shape (long side at most
512): the protocol a release is judged in is then the one it is chosen in. The evaluation pool is
never used here. The sweep is kept in the checkpoint (``release``) and printed as a Markdown table; a
photo that cannot be scored gets one line on stderr and is left out.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from edge_colorizer.checkpoint import atomic_torch_save, load_checkpoint, model_from_checkpoint, model_state
from edge_colorizer.colorizer import DEFAULT_SIZE, ColorizerModule
from edge_colorizer.evaluate import evaluate, paper_view
from edge_colorizer.io import check_writable_file, one_line, same_file, shown
from edge_colorizer.metrics.lpips import LPIPS
from edge_colorizer.models.ab_bins import MAX_CHROMA_GAIN, good_chroma_gain
from edge_colorizer.stopping import check_stop

DEFAULT_TEMPERATURES = (0.38, 0.5, 0.7, 1.0, 1.5)
# The bar is a colourfulness ratio of 0.6 on the evaluation pool. Validation photos (GCompris-like) come
# out more colourful relative to their truth than the wallpapers do: the measured gaps were 0.03 (first
# student), 0.10 (first teacher) and 0.23 (the current teacher at T = 0.7), so the floor here is 0.85.
DEFAULT_MIN_CF_RATIO = 0.85
# A floor above 2 asks for predictions twice as colourful as the photos themselves: no release rule
# means that, and it could only be refused after the whole sweep.
MAX_MIN_CF_RATIO = 2.0
# How each validation photo is viewed: at its own shape (long side <= 512), or as the paper protocol does
PROTOCOLS = {"deploy": None, "paper": paper_view}


@dataclass(frozen=True)
class SweepRow:
    temperature: float | None  # None: the model has no temperature (regression head)
    psnr_db: float
    lpips: float
    cf_ratio: float
    size: int = DEFAULT_SIZE  # the network input size it was scored at
    chroma_gain: float = 1.0  # the factor the decoded ab were multiplied by


def has_temperature(model: torch.nn.Module) -> bool:
    """Whether the model decodes at a temperature: an ab-bins head does, a regression head does not (both
    carry a ``temperature`` attribute, so the head type decides)."""
    return getattr(model, "head_type", None) == "bins"


def sweep(
    model: torch.nn.Module,
    val: str | Path,
    temperatures: tuple[float, ...],
    lpips: LPIPS,
    sizes: tuple[int, ...] = (DEFAULT_SIZE,),
    max_side: int = 512,
    on_skip: Callable[[str], None] | None = None,
    progress: Callable[[Path], None] | None = None,
    on_total: Callable[[int], None] | None = None,
    chroma_gains: tuple[float, ...] | None = None,
    view: Callable[[np.ndarray], np.ndarray] | None = None,
) -> list[SweepRow]:
    """Validation scores of ``model`` at each network size, temperature and chroma gain (``temperatures``
    unused if it has no temperature; ``chroma_gains`` None: the model's own). ``on_skip``, ``progress``,
    ``on_total`` and ``view`` are passed to every evaluation (:func:`edge_colorizer.evaluate.evaluate`),
    so a skipped photo is reported once per setting."""
    has_t = has_temperature(model)
    gains = chroma_gains or (getattr(model, "chroma_gain", 1.0),)
    if gains != (1.0,) and not has_chroma_gain(model):
        raise ValueError(f"{type(model).__name__} has no chroma gain to choose")
    rows = []
    for size in sizes:
        for t in temperatures if has_t else (None,):
            for gain in gains:
                if has_t:
                    model.temperature = t
                if has_chroma_gain(model):
                    model.set_chroma_gain(gain)
                colorizer = ColorizerModule(model, size=size)
                r = evaluate(
                    {"m": colorizer},
                    val,
                    max_side=max_side,
                    include_gray=False,
                    lpips=lpips,
                    on_skip=on_skip,
                    progress=progress,
                    on_total=on_total,
                    view=view,
                )
                rows.append(SweepRow(t, r[0].psnr_db, r[0].lpips, r[0].colorfulness_ratio, size, gain))
    return rows


def has_chroma_gain(model: torch.nn.Module) -> bool:
    """Whether the model's decoded ab can be scaled (the ab predictors can; the Zhang et al. ports cannot)."""
    return hasattr(model, "set_chroma_gain")


def choose(rows: list[SweepRow], min_cf_ratio: float) -> SweepRow:
    ok = [r for r in rows if r.cf_ratio >= min_cf_ratio]
    if not ok:
        best = max(r.cf_ratio for r in rows)
        what = "temperature" if any(r.temperature is not None for r in rows) else "size"
        what = f"{what} or chroma gain" if len({r.chroma_gain for r in rows}) > 1 else what
        raise ValueError(f"no {what} reaches colorfulness ratio {min_cf_ratio} (best {best:.3f}): the model is sepia")
    return min(ok, key=lambda r: r.lpips)


def _bad_sizes(sizes: tuple[int, ...]) -> list[int]:
    """The network sizes a colorizer cannot run at (it takes 16-1024, multiples of 8)."""
    return [s for s in sizes if not 16 <= s <= 1024 or s % 8]


def _bad_temperatures(temperatures: tuple[float, ...]) -> list[float]:
    """The temperatures the annealed mean cannot decode at (it divides by them: > 0 and finite)."""
    return [t for t in temperatures if not (math.isfinite(t) and t > 0)]


def _bad_chroma_gains(gains: tuple[float, ...]) -> list[float]:
    """The chroma gains the decoder cannot use (0 would be gray): > 0 and finite, at most MAX_CHROMA_GAIN."""
    return [g for g in gains if not (good_chroma_gain(g) and g <= MAX_CHROMA_GAIN)]


def _good_min_cf_ratio(value: float) -> bool:
    return 0 <= value <= MAX_MIN_CF_RATIO  # False for nan too


def _once(on_skip: Callable[[str], None] | None) -> Callable[[str], None]:
    """``on_skip`` called once per distinct line: every setting of the sweep meets the same bad photos."""
    said: set[str] = set()

    def skip(message: str) -> None:
        if message not in said:
            said.add(message)
            if on_skip:
                on_skip(message)

    return skip


def release(
    checkpoint: str | Path,
    val: str | Path,
    out: str | Path,
    temperatures: tuple[float, ...] | None = None,
    min_cf_ratio: float = DEFAULT_MIN_CF_RATIO,
    log=print,
    sizes: tuple[int, ...] | None = None,
    on_skip: Callable[[str], None] | None = None,
    progress: Callable[[Path], None] | None = None,
    on_total: Callable[[int], None] | None = None,
    chroma_gains: tuple[float, ...] | None = None,
    protocol: str = "deploy",
) -> SweepRow:
    """``temperatures``: those to choose from (default :data:`DEFAULT_TEMPERATURES`; a model with a
    regression head has none, and refuses them). ``sizes``: the network input sizes to choose from
    (default: the one the model runs at). ``chroma_gains``: the factors on the decoded ab to choose from
    (default: the model's own). ``protocol``: how each validation photo is scored (:data:`PROTOCOLS`).
    ``on_skip`` gets one line per photo that cannot be scored (once,
    not once per setting); ``progress`` is called after each photo of each evaluation, the fp16 check
    included, and ``on_total`` with the number of those calls. The release is written last: nothing is
    left at ``out`` by an error or a stop."""
    if temperatures is not None and not temperatures:
        raise ValueError("no temperatures to score (leave them out for the default)")
    if sizes is not None and not sizes:
        raise ValueError("no network sizes to score (leave them out for the model's own)")
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol {protocol!r}: must be one of {', '.join(PROTOCOLS)}")
    if chroma_gains is not None and not chroma_gains:
        raise ValueError("no chroma gains to score (leave them out for the model's own)")
    bad_g = _bad_chroma_gains(chroma_gains or ())
    if bad_g:
        raise ValueError(f"chroma gain {bad_g[0]:g}: must be > 0 and at most {MAX_CHROMA_GAIN:g}")
    bad_t = _bad_temperatures(temperatures or ())
    if bad_t:
        raise ValueError(f"temperature {bad_t[0]:g}: must be > 0 and finite")
    if not _good_min_cf_ratio(min_cf_ratio):
        raise ValueError(f"colorfulness ratio floor {min_cf_ratio:g}: must be 0-{MAX_MIN_CF_RATIO:g}")
    bad = _bad_sizes(sizes or ())
    if bad:
        raise ValueError(f"network size {bad[0]}: must be 16-1024 and a multiple of 8")
    ckpt = load_checkpoint(checkpoint)
    model = model_from_checkpoint(ckpt, checkpoint)
    sizes = sizes or (int(ckpt.get("input_size") or DEFAULT_SIZE),)
    if has_temperature(model):
        temperatures = temperatures or DEFAULT_TEMPERATURES
    elif temperatures is not None:  # an option that cannot be honoured, not one to ignore
        raise ValueError("the model has a regression head, no decoding temperature: leave --temperatures out")
    else:
        temperatures = ()
    if chroma_gains is not None and not has_chroma_gain(model):
        raise ValueError(f"{ckpt['model_name']} has no chroma gain: leave --chroma-gains out")
    chroma_gains = chroma_gains or (getattr(model, "chroma_gain", 1.0),)
    runs = len(sizes) * max(len(temperatures), 1) * len(chroma_gains) + 1  # the sweep, then the fp16 check
    hooks = dict(
        on_skip=_once(on_skip),
        progress=progress,
        on_total=(lambda n: on_total(n * runs)) if on_total else None,
        view=PROTOCOLS[protocol],
    )
    lpips = LPIPS("alex")
    rows = sweep(model, val, temperatures, lpips, sizes, chroma_gains=chroma_gains, **hooks)
    chosen = None
    try:
        chosen = choose(rows, min_cf_ratio)
    finally:  # the sweep is shown either way: a refusal is read against it
        log("| size | T | chroma gain | PSNR dB | LPIPS | CF ratio |\n|---|---|---|---|---|---|")
        for r in rows:
            mark = " (chosen)" if r is chosen else ""
            t = "–" if r.temperature is None else f"{r.temperature:g}"
            log(f"| {r.size} | {t}{mark} | {r.chroma_gain:g} | {r.psnr_db:.2f} | {r.lpips:.4f} | {r.cf_ratio:.2f} |")
    if chosen.temperature is not None:
        model.temperature = chosen.temperature
        model.model_args = {**model.model_args, "temperature": chosen.temperature}
    if has_chroma_gain(model):
        model.set_chroma_gain(chosen.chroma_gain)
        if chosen.chroma_gain != 1.0 or "chroma_gain" in model.model_args:  # a gain of 1 is the default
            model.model_args = {**model.model_args, "chroma_gain": chosen.chroma_gain}
    skip = ("format_version", "model_name", "model_args", "state_dict", "input_size")
    extra = {k: v for k, v in ckpt.items() if k not in skip}
    extra["release"] = {
        "source": str(checkpoint),
        "validation": str(val),
        "min_cf_ratio": min_cf_ratio,
        "protocol": protocol,
        "sweep": [[r.temperature, r.psnr_db, r.lpips, r.cf_ratio, r.size, r.chroma_gain] for r in rows],
    }
    released = {**model_state(model, half=True, input_size=chosen.size), **extra}
    # fp16 storage must not change what the model does; checked on what will be written, before writing
    chosen_t = () if chosen.temperature is None else (chosen.temperature,)
    again = sweep(model_from_checkpoint(released), val, chosen_t, lpips, (chosen.size,), **hooks)[0]
    assert again.chroma_gain == chosen.chroma_gain  # the file rebuilds the model at the chosen gain
    atomic_torch_save(released, out)
    gain = f", chroma gain {again.chroma_gain:g}" if again.chroma_gain != 1.0 else ""
    log(
        f"wrote {out} ({Path(out).stat().st_size / 1e6:.1f} MB, fp16, network size {again.size}{gain}): "
        f"validation ({protocol} protocol) PSNR {again.psnr_db:.2f} dB, "
        f"LPIPS {again.lpips:.4f}, CF ratio {again.cf_ratio:.2f}"
    )
    return chosen


def _numbers(option: str, text: str, kind: type, what: str) -> tuple:
    """``text``, comma-separated, as a tuple of ``kind``; a one-line ValueError naming ``option`` if not."""
    if not text.strip():
        raise ValueError(f"{option}: empty; give {what} or leave the option out for its default")
    try:
        return tuple(kind(item) for item in text.split(","))
    except ValueError:
        raise ValueError(f"{option} {shown(text)}: not a list of {what}") from None


def _options(
    args: argparse.Namespace,
) -> tuple[tuple[float, ...] | None, tuple[int, ...] | None, float, tuple[float, ...] | None]:
    """The temperatures (None: the default), sizes (None: the model's own), colourfulness floor and chroma
    gains (None: the model's own) asked for; a one-line ValueError naming the option that cannot be
    honoured."""
    temps = None
    if args.temperatures is not None:
        temps = _numbers("--temperatures", args.temperatures, float, "numbers")
        if _bad_temperatures(temps):
            raise ValueError(f"--temperatures {shown(args.temperatures)}: each must be > 0 and finite")
    sizes = None
    if args.sizes is not None:
        sizes = _numbers("--sizes", args.sizes, int, "whole numbers")
        if _bad_sizes(sizes):
            raise ValueError(f"--sizes {shown(args.sizes)}: each must be a multiple of 8, 16-1024")
    try:
        min_cf_ratio = float(args.min_cf_ratio)
    except ValueError:
        raise ValueError(f"--min-cf-ratio {shown(args.min_cf_ratio)}: not a number") from None
    if not _good_min_cf_ratio(min_cf_ratio):
        raise ValueError(f"--min-cf-ratio {shown(args.min_cf_ratio)}: must be 0-{MAX_MIN_CF_RATIO:g}")
    gains = None
    if args.chroma_gains is not None:
        gains = _numbers("--chroma-gains", args.chroma_gains, float, "numbers")
        if _bad_chroma_gains(gains):
            raise ValueError(
                f"--chroma-gains {shown(args.chroma_gains)}: each must be > 0 and at most {MAX_CHROMA_GAIN:g}"
            )
    if args.protocol not in PROTOCOLS:
        raise ValueError(f"--protocol {shown(args.protocol)}: one of {', '.join(PROTOCOLS)}")
    return temps, sizes, min_cf_ratio, gains


def main() -> None:
    from edge_colorizer.cli.common import progress_bar, say, stop_cleanly

    ap = argparse.ArgumentParser(
        prog="python -m training.release",
        description=" ".join(__doc__.split("\n\n")[0].split()),
    )
    ap.add_argument("checkpoint", help="the trained checkpoint (e.g. runs/teacher/model.pt); never changed")
    ap.add_argument("--val", required=True, help="validation photos (data prepare writes them to val/)")
    ap.add_argument("--out", required=True, help="the release file (.pt); an existing one is replaced")
    ap.add_argument(
        "--temperatures",
        default=None,
        help="annealed-mean temperatures to score (> 0), comma-separated (default: "
        f"{','.join(f'{t:g}' for t in DEFAULT_TEMPERATURES)}; a model with a regression head has none)",
    )
    ap.add_argument(
        "--min-cf-ratio",
        default=f"{DEFAULT_MIN_CF_RATIO:g}",
        help="the least validation colourfulness ratio a setting needs to be chosen, "
        f"0-{MAX_MIN_CF_RATIO:g} (default: %(default)s)",
    )
    ap.add_argument(
        "--sizes", default=None, help="network input sizes to choose from, e.g. 160,256,320 (default: its own)"
    )
    ap.add_argument(
        "--protocol",
        default="deploy",
        help="score each validation photo at its own shape, long side at most 512 (deploy), or resized to "
        "256x256 as the benchmark's paper protocol does (paper) (default: %(default)s)",
    )
    ap.add_argument(
        "--chroma-gains",
        default=None,
        help="factors on the decoded ab to choose from, > 0 and at most "
        f"{MAX_CHROMA_GAIN:g}, e.g. 1,1.1,1.2 (default: the model's own, 1 for a trained one)",
    )
    args = ap.parse_args()
    with stop_cleanly():  # Ctrl-C, SIGTERM: one line, exit 128 + signal; the release is written last
        try:
            temps, sizes, min_cf_ratio, gains = _options(args)
            if not Path(args.val).is_dir():
                raise ValueError(f"--val {shown(args.val)}: not a folder of photos")
            out, source = Path(args.out), Path(args.checkpoint)
            check_writable_file(out, (".pt", ".pth"))  # before the sweep, not after it
            if same_file(out, source):
                raise ValueError(f"{shown(out)}: is the checkpoint itself; write the release to another file")
        except ValueError as e:
            ap.exit(1, f"release: {e}\n")
        try:
            with progress_bar() as bar:  # on a terminal only
                task = bar.add_task("release sweep", total=None)
                release(
                    args.checkpoint,
                    args.val,
                    args.out,
                    temps,
                    min_cf_ratio,
                    sizes=sizes,
                    chroma_gains=gains,
                    protocol=args.protocol,
                    on_skip=lambda message: say(f"release: skipped {message}"),
                    progress=lambda _: bar.advance(task),
                    on_total=lambda n: bar.update(task, total=n),
                )
        except (ValueError, OSError) as e:  # one line, no traceback: a refusal, an unreadable file
            ap.exit(1, f"release: {_about(str(e), args.checkpoint, args.val)}\n")
        except Exception as e:  # a bug or a library's surprise: still one line
            check_stop()  # a stop that a library swallowed is no failure to go on past
            ap.exit(1, f"release: {shown(args.checkpoint)}: failed unexpectedly ({one_line(e)})\n")


def _about(text: str, checkpoint: str, val: str) -> str:
    """``text`` led by the file it is about: as it is if it names the checkpoint or the validation
    folder first, else after the checkpoint's name."""
    names = {checkpoint, str(Path(checkpoint)), shown(val), shown(Path(val))}
    if text.startswith(tuple(f"{name}:" for name in names)):
        return text
    return f"{shown(checkpoint)}: {text}"


if __name__ == "__main__":
    main()
