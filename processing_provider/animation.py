"""An animated GIF of the frames (matplotlib + Pillow), with the time of each frame written on it."""
import numpy as np

from .outputs import into_place


def write_gif(frames, times, path, fps=4, cmap="viridis"):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from matplotlib.animation import FuncAnimation, PillowWriter

    shown = frames.mean(axis=1) if frames.shape[1] != 3 else None
    values = frames[np.isfinite(frames)]
    vmin, vmax = (np.percentile(values, [1, 99]) if values.size else (0, 1))
    h, w = frames.shape[-2:]
    fig, ax = plt.subplots(figsize=(6, 6 * h / w), dpi=100)
    ax.set_axis_off()

    def image(j):
        if shown is not None:
            return np.ma.masked_invalid(shown[j])
        rgb = np.clip((frames[j].transpose(1, 2, 0) - vmin) / max(vmax - vmin, 1e-12), 0, 1)
        return np.nan_to_num(rgb)

    art = ax.imshow(image(0), cmap=cmap, vmin=vmin, vmax=vmax)
    label = ax.text(0.02, 0.97, "", transform=ax.transAxes, va="top", color="white",
                    bbox=dict(facecolor="black", alpha=0.5, lw=0))
    fig.tight_layout()

    def update(j):
        art.set_data(image(j))
        label.set_text(f"{times[j]:%Y-%m-%d %H:%M:%S} UTC  (frame {j})")
        return art, label

    try:
        with into_place(path, ".gif") as partial:
            FuncAnimation(fig, update, frames=len(frames), blit=False).save(partial, writer=PillowWriter(fps=fps))
    finally:
        plt.close(fig)
    return path
