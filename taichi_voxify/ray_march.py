"""Stage 1's ray-march operator: batches of rays from a table marched through a density +
colour grid (kernels/raymarch.py), forward and hand-written backward. It owns its ray table
and per-ray buffers on the device, as Stage 2's renderers own theirs; Stage 1's trainer and
CoarseField.render both march through it."""
import numpy as np

from . import ndarrays


class RayMarch:
    """Rays (origins, dirs) (R, 3) marched `batch` at a time.

    forward(density, rgb, mask, ids) renders rays ids into self.rgb (batch, 3) over white,
    self.depth (batch,) = sum_i w_i t_i (not divided by the opacity) and self.trans (batch,),
    the transmittance left. backward(...) accumulates the grid gradients for the last forward,
    given the loss gradients in self.grad_rgb, self.grad_opacity and self.grad_depth_err.
    """

    def __init__(self, origins, dirs, batch, shift, term):
        import taichi as ti

        self.origins, self.dirs = ndarrays.from_numpy(origins), ndarrays.from_numpy(dirs)
        self.ray_count, self.batch = len(origins), int(batch)
        self.shift, self.term = float(shift), float(term)
        self.ids = ndarrays.zeros((batch,), ti.i32)
        self.rgb, self.depth, self.trans = (ndarrays.zeros((batch, 3)), ndarrays.zeros((batch,)),
                                            ndarrays.zeros((batch,)))
        self.grad_rgb, self.grad_opacity, self.grad_depth_err = (
            ndarrays.zeros((batch, 3)), ndarrays.zeros((batch,)), ndarrays.zeros((batch,)))

    def forward(self, density, rgb, mask, ids=None):
        """Render the rays `ids` (numpy int, `batch` of them; None: those of the last call)."""
        from .kernels.raymarch import render_rays

        if ids is not None:
            self.ids.from_numpy(np.ascontiguousarray(ids, dtype=np.int32))
        render_rays(density, rgb, mask, self.origins, self.dirs, self.ids, self.rgb, self.depth,
                    self.trans, self.shift, self.term)

    def backward(self, density, rgb, mask, target_depth, fixed_density, fixed_rgb, blocks):
        """Add the gradients (int64 fixed point) into fixed_density / fixed_rgb and flag the
        touched blocks; target_depth (R,) is what the depth-error gradient was taken against."""
        from .kernels.grid import FIXED_POINT_SCALE
        from .kernels.raymarch import backward_rays

        backward_rays(density, rgb, mask, self.origins, self.dirs, self.ids, self.rgb,
                      self.depth, self.trans, target_depth, self.grad_rgb, self.grad_opacity,
                      self.grad_depth_err, fixed_density, fixed_rgb, blocks, self.shift,
                      self.term, FIXED_POINT_SCALE)

    def forward_sparse(self, grid, ids=None):
        """forward() through a stage1_sparse.SparseStage1Grid (kernels/sparse_march.py)."""
        from .kernels.sparse_march import render_rays

        if ids is not None:
            self.ids.from_numpy(np.ascontiguousarray(ids, dtype=np.int32))
        render_rays(grid.block_map, grid.mask, grid.arrays["density"], grid.arrays["rgb"],
                    grid.n, self.origins, self.dirs, self.ids, self.rgb, self.depth, self.trans,
                    self.shift, self.term)

    def backward_sparse(self, grid, target_depth):
        """backward() through a SparseStage1Grid: into its fixed-point gradients, flagging the
        touched slots."""
        from .kernels.grid import FIXED_POINT_SCALE
        from .kernels.sparse_march import backward_rays

        backward_rays(grid.block_map, grid.mask, grid.arrays["density"], grid.arrays["rgb"],
                      grid.n, self.origins, self.dirs, self.ids, self.rgb, self.depth,
                      self.trans, target_depth, self.grad_rgb, self.grad_opacity,
                      self.grad_depth_err, grid.fixed_density, grid.fixed_rgb, grid.touched,
                      self.shift, self.term, FIXED_POINT_SCALE)

    def render_all(self, density, rgb, mask):
        """Every ray of the table, `batch` at a time: numpy (rgb (R, 3), depth (R,), trans (R,))."""
        out_rgb = np.empty((self.ray_count, 3), self.rgb.to_numpy().dtype)
        out_depth, out_trans = np.empty(self.ray_count, out_rgb.dtype), np.empty(
            self.ray_count, out_rgb.dtype)
        for start in range(0, self.ray_count, self.batch):
            # the last batch repeats the last ray to fill the buffers; the repeats are dropped
            ids = np.minimum(np.arange(start, start + self.batch), self.ray_count - 1)
            self.forward(density, rgb, mask, ids)
            stop = min(self.ray_count, start + self.batch)
            out_rgb[start:stop] = self.rgb.to_numpy()[:stop - start]
            out_depth[start:stop] = self.depth.to_numpy()[:stop - start]
            out_trans[start:stop] = self.trans.to_numpy()[:stop - start]
        return out_rgb, out_depth, out_trans
