"""Stage 2's image losses and their gradients, and the palette cross-entropy's targets."""
import numpy as np


def palette_targets(pixel_art, masks, palette):
    """(6,N,N) int32: the palette index nearest each foreground pixel-art colour, -1 elsewhere."""
    dist = np.linalg.norm(pixel_art[..., None, :] - palette, axis=-1)
    return np.where(masks, np.argmin(dist, axis=-1), -1).astype(np.int32)


def palette_cross_entropy(hist, logits, count):
    """The cross-entropy term's value: sum -hist log softmax(logits) / count."""
    z = logits - logits.max(axis=-1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    return float(-(hist * log_p).sum() / max(count, 1))


def view_losses(out, pixel_art, masks, depth_target, cfg):
    """Weighted loss terms and their gradients w.r.t. the rendered colour, depth and opacity."""
    diff = out.rgb - pixel_art
    pixel = float(np.mean(diff * diff))
    g_rgb = cfg.w_pixel * 2.0 * diff / diff.size
    background = ~masks
    count = max(int(background.sum()), 1)
    alpha = float(np.sum(out.opacity ** 2 * background)) / count
    g_opacity = cfg.w_alpha * 2.0 * out.opacity * background / count
    depth, g_depth = 0.0, np.zeros_like(out.depth)
    if depth_target is not None and cfg.w_depth > 0:
        valid = masks & np.isfinite(depth_target)
        x = np.where(valid, out.depth - np.nan_to_num(depth_target), 0.0)
        count = max(int(valid.sum()), 1)
        if cfg.depth_loss == "l1":
            depth, slope = np.abs(x).sum() / count, np.sign(x)
        else:
            beta = cfg.depth_beta
            small = np.abs(x) < beta
            depth = np.where(small, 0.5 * x * x / beta, np.abs(x) - 0.5 * beta).sum() / count
            slope = np.where(small, x / beta, np.sign(x))
        g_depth = cfg.w_depth * slope * valid / count
    total = cfg.w_pixel * pixel + cfg.w_alpha * alpha + cfg.w_depth * float(depth)
    terms = dict(loss=total, pixel=pixel, alpha=alpha, depth=float(depth))
    return terms, g_rgb, g_depth, g_opacity
