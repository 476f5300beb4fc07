"""The training loss history as a PNG (matplotlib, no display)."""
from .outputs import into_place


def plot_loss(history, path, title=""):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    iterations = [h["iteration"] for h in history]
    keys = [k for k in (history[0] if history else {}) if k != "iteration" and isinstance(history[0][k], (int, float))]
    for key in keys:
        values = [h.get(key) for h in history]
        if any(v and v > 0 for v in values):
            ax.plot(iterations, values, label=key, lw=1.2 if key == "total" else 0.8)
    if history:
        ax.set_yscale("log")
    else:  # ITERATIONS=0 (the accurate mode's default): nothing was trained, say so rather than draw empty axes
        ax.text(0.5, 0.5, "No training iterations: the model is its motion estimate\n(set ITERATIONS > 0 to "
                "train a learned correction)", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("iteration")
    ax.set_ylabel("loss")
    ax.set_title(f"Training loss {title}".strip())
    ax.grid(alpha=0.3)
    if keys:
        ax.legend(fontsize=8)
    fig.tight_layout()
    try:
        with into_place(path) as partial:
            fig.savefig(partial, format="png")
    finally:
        plt.close(fig)
    return path
