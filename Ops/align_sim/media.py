"""Real media for simulated items: one ffmpeg run per item writes a 2 s 160x120
H.264/AAC clip and a JPEG cover.

What the picture and the sound carry (see README.md, "Generative model"):
- nuisance, large and irrelevant to engagement: the scene family (lavfi source), its
  colours and seed, a hue rotation, a scroll (motion), a caption word, the tone's
  base frequency and loudness;
- signal, smaller: the palette (a filled box, about a third of the frame, at a random
  place) and the rhythm (the shape of the soundtrack).
"""

import os
import subprocess

from vocab import PALETTES, RHYTHMS

WIDTH, HEIGHT, FPS, SECONDS = 160, 120, 10, 2
# Part of each media file's name: bump it when render() changes its output for the
# same parameters, so that `generate` does not keep stale files.
RENDER_VERSION = 2


def _font():
    """DejaVu Sans (fonts-dejavu-core, which fontconfig, an ffmpeg dependency, pulls in),
    else whatever fontconfig calls sans. A different font changes the captions' pixels,
    so worlds are byte-identical only between machines with the same font."""
    path = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
    if os.path.exists(path):
        return path
    found = subprocess.run(["fc-match", "--format=%{file}", "sans"], capture_output=True, text=True)
    if found.returncode == 0 and os.path.exists(found.stdout.strip()):
        return found.stdout.strip()
    raise RuntimeError("no font for the captions: install fonts-dejavu-core")


FONT = _font()


def _hex(rgb):
    return "0x%02X%02X%02X" % tuple(rgb)


# lavfi video source per nuisance scene family; fields from scene_source().
SCENE_SOURCES = {
    "testsrc2": "testsrc2={size}",
    "mandelbrot": "mandelbrot={size}:start_scale={zoom:.3f}:end_scale=0.3",
    "life": "life={size}:ratio=0.2:mold=10:seed={seed}:life_color={c0}:death_color={c1}:mold_color={c1}",
    "cellauto": "cellauto={size}:rule={rule}:seed={seed}:random_fill_ratio=0.5",
    "gradients": "gradients={size}:c0={c0}:c1={c1}:speed=0.05:seed={seed}",
    "smptebars": "smptebars={size}",
    "noise": "color=c={c0}:{size},noise=alls=60:allf=t+u",
    "rgbtestsrc": "rgbtestsrc={size}",
}

# lavfi audio source per rhythm: the shape is the signal, frequency and volume nuisance.
RHYTHM_SOURCES = {
    "calm": "sine=frequency={f:.1f}:{common},volume={a:.3f}",
    "pulse": "sine=frequency={f:.1f}:{common},tremolo=f=6:d=1.0,volume={a:.3f}",
    "sweep": "aevalsrc='{a:.3f}*sin(2*PI*{f:.1f}*t*(1+1.5*t))':s=16000:d={seconds}",
    "static": "anoisesrc=color=pink:amplitude={a:.3f}:seed={seed}:{common},highpass=f={f:.1f}",
}


def scene_source(media):
    """The lavfi video source of the item's nuisance scene family."""
    return SCENE_SOURCES[media["scene"]].format(
        size=f"s={WIDTH}x{HEIGHT}:r={FPS}", seed=media["seed"], zoom=media["zoom"],
        c0=_hex(media["color_a"]), c1=_hex(media["color_b"]),
        rule=[18, 30, 45, 60, 90, 105, 110, 150][media["seed"] % 8])


def audio_source(media):
    """The lavfi audio source: the rhythm's shape at a nuisance frequency and volume."""
    return RHYTHM_SOURCES[RHYTHMS[media["rhythm"]][0]].format(
        f=media["freq"], a=media["amplitude"], seed=media["seed"], seconds=SECONDS,
        common=f"sample_rate=16000:duration={SECONDS}")


def video_filters(media):
    palette = PALETTES[media["palette"]][1]
    box = [max(0, min(255, c + d)) for c, d in zip(palette, media["palette_jitter"])]
    bx, by, bw, bh = media["box"]
    caption = media["caption"]
    return ",".join([
        f"hue=h={media['hue']}",
        f"scroll=h={media['scroll'][0]:.4f}:v={media['scroll'][1]:.4f}",
        f"drawbox=x={bx}:y={by}:w={bw}:h={bh}:color={_hex(box)}:t=fill",
        f"drawtext=fontfile={FONT}:text='{caption}':x={media['text_xy'][0]}:y={media['text_xy'][1]}"
        f":fontsize={media['font_size']}:fontcolor={_hex(media['color_b'])}",
        "format=yuv420p",
    ])


def render(media, video_path, cover_path):
    """Writes the clip and its cover (the frame at 1.5 s). Exactly two keyframes (a GOP
    of one second, no scene-cut keyframes), so Ember decodes 2 frames + the cover.
    Bit-exact flags and one thread keep the bytes a function of the parameters."""
    # trim ends the (endless) lavfi source inside the graph; -t alone leaves the
    # cover branch waiting for frames forever.
    graph = (f"{scene_source(media)},trim=end_frame={SECONDS * FPS},{video_filters(media)},split[v][c];"
             f"[c]select='eq(n\\,{int(1.5 * FPS)})'[cover];"
             f"{audio_source(media)}[a]")
    command = [
        "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-threads", "1",
        "-filter_complex_threads", "1", "-filter_threads", "1",
        "-filter_complex", graph,
        "-map", "[v]", "-map", "[a]",
        "-c:v", "libx264", "-preset", "veryfast", "-g", str(FPS), "-sc_threshold", "0", "-threads", "1",
        "-c:a", "aac", "-b:a", "32k", "-ac", "1",
        "-fflags", "+bitexact", "-flags:v", "+bitexact", "-flags:a", "+bitexact",
        "-map_metadata", "-1", video_path,
        "-map", "[cover]", "-frames:v", "1", "-q:v", "4", "-fflags", "+bitexact",
        "-flags:v", "+bitexact", cover_path,
    ]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"ffmpeg failed for {video_path}: {result.stderr.strip()[:2000]}")
