"""Stage 2's image losses over the six rendered axis views, per pixel, with their gradients.

For pixel p of the (6, N, N) views (colour C, depth D, opacity O) against the pixel art A,
foreground mask F and target depth D* (where `depth_valid`; ViewLosses passes the depth the
renderer gives the voxel the surface fills, stage2/losses.surface_voxel_depth):

    pixel = sum_p |C_p - A_p|^2 * pixel_scale            (pixel_scale = 1 / (6 N^2 3): a mean)
    alpha = sum_p (1 - F_p) O_p^2 * alpha_scale          (alpha_scale = 1 / background pixels)
    depth = sum_p valid_p rho(D_p - D*_p) * depth_scale  (depth_scale = 1 / valid pixels)

rho is smooth-L1 with knee `beta` (0.5 x^2 / beta below it, |x| - beta / 2 above), or L1.
Gradients of w_pixel pixel + w_alpha alpha + w_depth depth go to g_rgb, g_opacity, g_depth;
each pixel's three (unweighted) contributions go to terms (6, N, N, 3), whose sums are the
terms' values. One thread per image row, no atomics: reproducible, and nothing leaves the
device. (Rows, not pixels: an ndrange over (view, row, column) divided at every pixel.)
"""
import taichi as ti


@ti.kernel
def axis_view_losses(out_rgb: ti.types.ndarray(), out_depth: ti.types.ndarray(),
                     out_opacity: ti.types.ndarray(), target_rgb: ti.types.ndarray(),
                     foreground: ti.types.ndarray(), target_depth: ti.types.ndarray(),
                     depth_valid: ti.types.ndarray(), pixel_scale: float, alpha_scale: float,
                     depth_scale: float, w_pixel: float, w_alpha: float, w_depth: float,
                     beta: float, l1: ti.i32, g_rgb: ti.types.ndarray(),
                     g_depth: ti.types.ndarray(), g_opacity: ti.types.ndarray(),
                     terms: ti.types.ndarray()):
    n = out_rgb.shape[1]
    for row in range(out_rgb.shape[0] * n):
        v, r = row // n, row % n
        for c in range(n):
            pixel = 0.0
            for ch in ti.static(range(3)):
                diff = out_rgb[v, r, c, ch] - target_rgb[v, r, c, ch]
                pixel += diff * diff * pixel_scale
                g_rgb[v, r, c, ch] = w_pixel * 2.0 * diff * pixel_scale
            alpha, g_o = 0.0, 0.0
            if foreground[v, r, c] == 0:
                o = out_opacity[v, r, c]
                alpha = o * o * alpha_scale
                g_o = w_alpha * 2.0 * o * alpha_scale
            depth, g_d = 0.0, 0.0
            if depth_valid[v, r, c] != 0:
                x = out_depth[v, r, c] - target_depth[v, r, c]
                slope = ti.select(x > 0.0, 1.0, ti.select(x < 0.0, -1.0, 0.0))
                depth = ti.abs(x)
                if l1 == 0 and ti.abs(x) < beta:
                    depth, slope = 0.5 * x * x / beta, x / beta
                elif l1 == 0:
                    depth = ti.abs(x) - 0.5 * beta
                depth *= depth_scale
                g_d = w_depth * slope * depth_scale
            g_opacity[v, r, c] = g_o
            g_depth[v, r, c] = g_d
            terms[v, r, c, 0] = pixel
            terms[v, r, c, 1] = alpha
            terms[v, r, c, 2] = depth
