"""Stage 2's per-voxel state and the passes over it, on a dense N^3 grid.

The trainer talks to its grid only through this interface, so a block-sparse grid can stand
in for DenseGrid by providing the same attributes and methods:

    n                  the grid's resolution (N)
    density            AdamParam of the raw density (values, gradient, moments)
    colour             AdamParam of the palette logits (N,N,N,K), or of the rgb colours for
                       the use_gumbel=False ablation
    renderer           the view renderer over this grid's storage: forward(density, colour,
                       quantizer), backward(density, colour, grad_density, grad_colour,
                       quantizer, class_target, class_scale), with `out`, `grads` and
                       images on the device and class_term() (see stage2/ops.py)
    begin_step(step)   anything the grid does before a step renders (a sparse grid refreshes
                       its active blocks every so many steps; the dense grid nothing)
    adam_step(t)       one masked Adam step (iteration t >= 1) on what the backward touched,
                       consuming the gradients and clearing the touched-block flags (the
                       sparse grid computes the logits' gradients inside this step, so its
                       colour has no gradient array)
    arrays()           numpy (density (N,N,N), colour (N,N,N,K or 3)) for the result

Here every per-voxel pass (Adam, gradient clearing, quantizing) runs over the blocks the render
visited, never over all N^3 voxels; the only full pass is the renderer's column spans (3 N^3
reads of the density, every span_every steps). stage2/sparse.py's SparseStage2Grid stores the
active blocks only.
"""
from .. import ndarrays
from ..kernels.grid import block_count
from .ops import AxisViewRenderer, PerspectiveRenderer


class AdamParam:
    """A trained device array with its gradient and Adam moments (kernels/adam.masked_adam).
    The step consumes the gradient (zeroes it), so backward passes accumulate into it."""

    def __init__(self, values, lr, low=-1e30, high=1e30):
        self.value = ndarrays.from_numpy(values)
        self.grad = ndarrays.zeros(values.shape)
        self.m, self.v = ndarrays.zeros(values.shape), ndarrays.zeros(values.shape)
        self.lr, self.low, self.high = lr, low, high

    def step(self, t, blocks, beta1=0.9, beta2=0.99, eps=1e-12):
        """Adam on the entries with gradient inside the flagged blocks (iteration t >= 1)."""
        from ..kernels.adam import masked_adam

        masked_adam(self.value, self.grad, self.m, self.v, blocks, self.lr, beta1, beta2,
                    1.0 - beta1 ** t, 1.0 - beta2 ** t, eps, self.low, self.high)


class DenseGrid:
    """Raw density and palette logits on a dense N^3 grid (see the module docstring), or rgb
    colours in [0, 1] for the use_gumbel=False ablation. ortho=False renders the perspective
    ablation, whose backward flags no blocks: Adam then visits every block."""

    def __init__(self, density, colour, shift, config, ortho=True, use_gumbel=True):
        import taichi as ti

        self.n = density.shape[0]
        self.density = AdamParam(density, config.lr_density)
        if use_gumbel:
            self.colour = AdamParam(colour, config.lr_logits)
        else:
            self.colour = AdamParam(colour, config.lr_rgb, 0.0, 1.0)
        if ortho:
            self.renderer = AxisViewRenderer(self.n, shift, config.skip_alpha, config.t_min)
            self._blocks = self.renderer.touched
        else:
            self.renderer = PerspectiveRenderer(self.n, shift, config.perspective_distance)
            self._blocks = ndarrays.full((block_count(self.n),) * 3, 1, ti.u8)
        self._ortho = ortho

    def begin_step(self, step):
        pass

    def adam_step(self, t):
        self.density.step(t, self._blocks)
        self.colour.step(t, self._blocks)
        if self._ortho:
            self._blocks.fill(0)

    def arrays(self):
        return self.density.value.to_numpy(), self.colour.value.to_numpy()
