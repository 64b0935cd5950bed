"""Patch-level CLIP loss for Stage 2: the only module that uses PyTorch (imported lazily).

A patch a few voxels wide is cut from a rendered N x N axis view and the matching patch from the
high-resolution mesh render of the same view; both are resized to the encoder's input size
(the rendered one by nearest neighbour, so voxels stay blocks; the mesh one by antialiased
bilinear), normalised with CLIP's mean/std and encoded, and

    loss = mean over patches of 1 - cos(f(rendered patch), f(mesh patch)).

Its gradient with respect to the rendered pixels comes from torch autograd and goes back to the
Taichi backward of the renderer as a numpy array.

`load(mode=...)` gets real weights (open_clip ViT-B-32 / openai by default, or a local
checkpoint): "auto" uses them when they are in the local cache or the hub answers, otherwise
warns once and returns None (train without the term); "required" raises VoxifyError; "off"
returns None.
"""
import os
import socket
import warnings

import numpy as np

from .errors import OptionError, VoxifyError

MODES = ("auto", "off", "required")
OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)
HUB_HOST = "huggingface.co"

_warned = set()


class ClipUnavailableWarning(UserWarning):
    """CLIP weights could not be had; Stage 2 runs without the CLIP term."""


class ClipPatchLoss:
    """1 - cos similarity of CLIP features of rendered patches and mesh-render patches.

    encoder: a torch callable (B, 3, S, S) normalised images -> (B, D) features, e.g. an
    open_clip model's `encode_image`; its parameters are not trained.
    """

    def __init__(self, encoder, image_size=224, mean=OPENAI_MEAN, std=OPENAI_STD,
                 patch_cells=8, dtype=None, name="clip"):
        import torch

        self.encoder = encoder
        self.image_size = int(image_size)
        self.patch_cells = int(patch_cells)
        self.dtype = dtype or torch.float32
        self.mean = torch.tensor(mean, dtype=self.dtype).view(1, 3, 1, 1)
        self.std = torch.tensor(std, dtype=self.dtype).view(1, 3, 1, 1)
        self.name = name

    @classmethod
    def from_open_clip(cls, model, patch_cells=8, name="clip"):
        """Wrap an open_clip CLIP model (frozen, eval mode); mean/std from its preprocess cfg."""
        model.eval()
        for p in model.parameters():
            p.requires_grad_(False)
        visual = model.visual
        size = visual.image_size
        size = size[0] if isinstance(size, (tuple, list)) else size
        cfg = getattr(visual, "preprocess_cfg", {}) or {}
        dtype = next(model.parameters()).dtype
        return cls(model.encode_image, size, cfg.get("mean", OPENAI_MEAN),
                   cfg.get("std", OPENAI_STD), patch_cells, dtype, name)

    def patch_positions(self, masks, rng, patches_per_view=1, views=None, cells=None):
        """[(view, row, col, size)]: size x size patches (`cells`, default self.patch_cells,
        at most N) centred on random foreground pixels of each view."""
        n = masks.shape[1]
        p = min(cells or self.patch_cells, n)
        picks = []
        for v in (range(masks.shape[0]) if views is None else views):
            fg = np.argwhere(masks[v])
            for _ in range(patches_per_view):
                if len(fg):
                    cy, cx = fg[rng.integers(len(fg))]
                else:
                    cy, cx = rng.integers(n, size=2)
                picks.append((int(v), int(np.clip(cy - p // 2, 0, n - p)),
                              int(np.clip(cx - p // 2, 0, n - p)), p))
        return picks

    def _prepare(self, patches, mode):
        import torch.nn.functional as F

        size = (self.image_size, self.image_size)
        if mode == "nearest":
            x = F.interpolate(patches, size=size, mode="nearest")
        else:
            x = F.interpolate(patches, size=size, mode="bilinear", align_corners=False,
                              antialias=True)
        return (x - self.mean) / self.std

    def _reference_patches(self, reference, picks, n):
        import torch

        h = reference.shape[1]
        crops = []
        for v, r, c, p in picks:
            r0, r1 = round(r * h / n), round((r + p) * h / n)
            c0, c1 = round(c * h / n), round((c + p) * h / n)
            crops.append(torch.as_tensor(np.ascontiguousarray(reference[v, r0:r1, c0:c1]),
                                         dtype=self.dtype).permute(2, 0, 1))
        return torch.stack(crops)

    def loss_and_grad(self, rendered, reference, picks):
        """(loss, d loss / d rendered) for rendered (V,N,N,3) and reference (V,H,H,3) views in
        [0, 1] and patch positions `picks` (from patch_positions)."""
        import torch
        import torch.nn.functional as F

        n = rendered.shape[1]
        pixels = torch.tensor(np.asarray(rendered), dtype=self.dtype, requires_grad=True)
        crops = torch.stack([pixels[v, r:r + p, c:c + p].permute(2, 0, 1)
                             for v, r, c, p in picks])
        with torch.no_grad():
            target = self.encoder(self._prepare(self._reference_patches(reference, picks, n),
                                                "bilinear"))
        features = self.encoder(self._prepare(crops, "nearest"))
        loss = (1.0 - F.cosine_similarity(features, target, dim=-1)).mean()
        loss.backward()
        return float(loss.detach()), pixels.grad.numpy().astype(np.float64)


# --- loading real weights ------------------------------------------------------------------------

def _unavailable(mode, reason):
    if mode == "required":
        raise VoxifyError(f"CLIP is required but unavailable: {reason}")
    if reason not in _warned:
        _warned.add(reason)
        warnings.warn(f"CLIP loss disabled: {reason}", ClipUnavailableWarning, stacklevel=3)
    return None


def _cached_hub_file(pretrained_cfg, cache_dir=None):
    """Path of the hub checkpoint of a pretrained tag if it is already in the local cache."""
    from huggingface_hub import try_to_load_from_cache

    hub = pretrained_cfg.get("hf_hub", "")
    if not hub:
        return None
    repo, filename = os.path.split(hub)
    names = [filename] if filename else ["open_clip_model.safetensors",
                                         "open_clip_pytorch_model.bin"]
    for name in names:
        path = try_to_load_from_cache(repo, name, cache_dir=cache_dir)
        if isinstance(path, str) and os.path.isfile(path):
            return path
    return None


def hub_reachable(host=HUB_HOST, timeout=3.0):
    """True when a TCP connection to the model hub opens within `timeout` seconds."""
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


class _Unavailable(Exception):
    """Internal: why real CLIP weights cannot be had."""


def _open_clip_model(model, pretrained, weights_path, device, cache_dir):
    """An open_clip CLIP model with real weights, or _Unavailable saying why not."""
    try:
        import open_clip
    except ImportError:
        raise _Unavailable("open_clip_torch is not installed (pip install open_clip_torch)")
    cfg = open_clip.get_pretrained_cfg(model, pretrained) or {}
    if weights_path is not None:
        if not os.path.isfile(weights_path):
            raise _Unavailable(f"CLIP checkpoint {weights_path} does not exist")
        source = weights_path
    else:
        source = _cached_hub_file(cfg, cache_dir)
        if source is None and not hub_reachable():
            raise _Unavailable(f"no {model}/{pretrained} weights in the local cache and "
                               f"{HUB_HOST} cannot be reached; give a checkpoint path")
        source = source or pretrained
    try:
        return open_clip.create_model(model, pretrained=source, device=device,
                                      force_quick_gelu=bool(cfg.get("quick_gelu", False)),
                                      cache_dir=cache_dir)
    except Exception as exc:  # any failure to build or load is reported on one line
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise _Unavailable(f"could not load {model}/{pretrained}: {detail}")


def load(mode="auto", model="ViT-B-32", pretrained="openai", weights_path=None,
         patch_cells=8, device="cpu", cache_dir=None):
    """A ClipPatchLoss with real weights, or None (mode "off", or "auto" without weights)."""
    if mode not in MODES:
        raise OptionError(f"unknown CLIP mode {mode!r}: choose one of {', '.join(MODES)}")
    if mode == "off":
        return None
    try:
        net = _open_clip_model(model, pretrained, weights_path, device, cache_dir)
    except _Unavailable as why:
        return _unavailable(mode, str(why))
    return ClipPatchLoss.from_open_clip(net, patch_cells=patch_cells, name=f"{model}/{pretrained}")


# --- CLIP-IQA, the paper's score -----------------------------------------------------------------

class ClipIQA:
    """The paper's CLIP-IQA: 100 x cosine similarity between CLIP features of pictures of the
    voxel art and of the prompt "A voxel art of {name}", averaged over the pictures."""

    def __init__(self, model, tokenizer, prompt="A voxel art of {name}"):
        model.eval()
        self.model, self.tokenizer, self.prompt = model, tokenizer, prompt
        self.images = ClipPatchLoss.from_open_clip(model)

    def __call__(self, images, name):
        """images: (B, H, W, 3) float sRGB in [0, 1]; name: what the object is."""
        import torch
        import torch.nn.functional as F

        with torch.no_grad():
            x = torch.as_tensor(np.asarray(images), dtype=self.images.dtype).permute(0, 3, 1, 2)
            image = self.model.encode_image(self.images._prepare(x, "bilinear"))
            text = self.model.encode_text(self.tokenizer([self.prompt.format(name=name)]))
            cos = F.cosine_similarity(image, text.to(image.dtype), dim=-1)
        return float(100.0 * cos.mean())


def clip_iqa_scorer(weights_path=None, model="ViT-B-32", pretrained="openai", device="cpu"):
    """A ClipIQA with real weights; VoxifyError when they cannot be had (never random ones)."""
    import open_clip

    try:
        net = _open_clip_model(model, pretrained, weights_path, device, None)
    except _Unavailable as why:
        raise VoxifyError(f"CLIP-IQA needs real CLIP weights: {why}") from None
    return ClipIQA(net, open_clip.get_tokenizer(model))
