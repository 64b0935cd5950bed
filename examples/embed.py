"""A Taichi program that embeds taichi_voxify: it starts Taichi itself, converts a mesh, and
renders the voxel art with its own ray-marching kernel (a voxel DDA through the index field,
palette colours, sun shadows, a checkered floor), orbiting the camera in a GGUI window.

    python examples/embed.py [MESH] [--res 32] [--colors 8] [--arch cpu|cuda]
    python examples/embed.py --headless --screenshot embed.png

Everything below `ti.init` is ordinary Taichi code; the library only supplies `art`.
"""
import argparse
import math
import os
import sys

import taichi as ti

SKY_TOP, SKY_HORIZON = ti.math.vec3(0.35, 0.55, 0.85), ti.math.vec3(0.85, 0.9, 0.97)
SUN = ti.math.vec3(0.5, 1.0, 0.7) / math.sqrt(0.5**2 + 1.0 + 0.7**2)
INF = 1e9


@ti.func
def march(grid: ti.template(), origin, direction):
    """First filled voxel along a ray (Amanatides-Woo DDA in voxel units; the grid spans
    [0, X] x [0, Y] x [0, Z]): (hit, distance, face normal, palette index)."""
    size = ti.Vector(grid.shape).cast(ti.f32)
    inv = 1.0 / ti.select(ti.abs(direction) < 1e-8, 1e-8, direction)
    t0, t1 = -origin * inv, (size - origin) * inv
    t_enter = ti.max(ti.min(t0, t1).max(), 0.0)
    t_exit = ti.max(t0, t1).min()
    hit, t, normal, index = False, INF, ti.math.vec3(0.0), 0
    if t_enter < t_exit:
        cell = ti.math.clamp(ti.floor(origin + direction * (t_enter + 1e-4)), 0, size - 1).cast(int)
        step = ti.select(direction > 0, 1, -1)
        t_next = ((cell + ti.select(direction > 0, 1, 0)).cast(ti.f32) - origin) * inv
        t_step = ti.abs(inv)
        normal = -step.cast(ti.f32) * ti.cast(ti.min(t0, t1) == ti.min(t0, t1).max(), ti.f32)
        t = t_enter
        while not hit and t < t_exit:
            if grid[cell] > 0:
                hit, index = True, ti.cast(grid[cell], ti.i32)
            else:
                axis = 0
                if t_next[1] < t_next[axis]:
                    axis = 1
                if t_next[2] < t_next[axis]:
                    axis = 2
                t = t_next[axis]
                t_next[axis] += t_step[axis]
                cell[axis] += step[axis]
                normal = ti.math.vec3(0.0)
                normal[axis] = -step[axis]
                if cell[axis] < 0 or cell[axis] >= size[axis]:
                    t = INF
    return hit, t, normal, index


@ti.kernel
def render(image: ti.template(), grid: ti.template(), palette: ti.template(),
           eye: ti.math.vec3, target: ti.math.vec3, floor_y: ti.f32):
    width, height = image.shape
    forward = ti.math.normalize(target - eye)
    right = ti.math.normalize(ti.math.cross(forward, ti.math.vec3(0.0, 1.0, 0.0)))
    up = ti.math.cross(right, forward)
    for x, y in image:
        uv = (ti.math.vec2(x, y) + 0.5 - 0.5 * ti.math.vec2(width, height)) / height
        direction = ti.math.normalize(forward * 1.6 + right * uv.x + up * uv.y)
        sky = ti.math.mix(SKY_HORIZON, SKY_TOP, ti.max(direction.y, 0.0))
        color = sky
        hit, t, normal, index = march(grid, eye, direction)
        point, albedo = ti.math.vec3(0.0), ti.math.vec3(0.0)
        floor_t = ti.select(direction.y < 0, (floor_y - eye.y) / direction.y, INF)
        if hit:
            albedo = ti.pow(palette[index - 1], 2.2)  # sRGB palette to linear
            point = eye + direction * t + normal * 1e-3
        elif floor_t < INF:
            point = eye + direction * floor_t
            checker = (ti.floor(point.x / 4) + ti.floor(point.z / 4)) % 2
            albedo = ti.math.vec3(0.55 + 0.15 * checker)
            normal = ti.math.vec3(0.0, 1.0, 0.0)
            point.y = floor_y + 1e-3
        if hit or floor_t < INF:
            shadowed, _, _, _ = march(grid, point, SUN)
            sun = ti.select(shadowed, 0.0, ti.max(ti.math.dot(normal, SUN), 0.0))
            lit = albedo * (0.35 * (0.6 + 0.4 * normal.y) + 0.9 * sun)
            fog = ti.select(hit, 0.0, 1.0 - ti.exp(-floor_t * 0.004))  # the floor fades out
            color = ti.math.mix(ti.pow(ti.math.clamp(lit, 0.0, 1.0), 1.0 / 2.2), sky, fog)
        image[x, y] = color


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("mesh", nargs="?", help="mesh file (default: the bundled cow)")
    p.add_argument("--res", type=int, default=32)
    p.add_argument("--colors", type=int, default=8)
    p.add_argument("--preset", default="fast", help="fast | paper | test")
    p.add_argument("--arch", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--size", type=int, nargs=2, default=(960, 640), metavar=("W", "H"))
    p.add_argument("--headless", action="store_true", help="render one frame, no window")
    p.add_argument("--screenshot", help="PNG of the (first) frame")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    ti.init(arch=ti.cuda if args.arch == "cuda" else ti.cpu)  # this program's own Taichi

    import taichi_voxify as tv

    bundled = os.path.join(os.path.dirname(tv.__file__), "data", "spot", "spot.obj")
    try:
        art = tv.convert(args.mesh or bundled, resolution=args.res, colors=args.colors,
                         preset=args.preset, front="+z" if args.mesh else "-z", clip="off")
    except tv.VoxifyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    grid, palette = art.to_field(), art.palette_field()  # ti.u8 (X, Y, Z), ti.Vector (K,)
    image = ti.Vector.field(3, ti.f32, shape=tuple(args.size))
    floor_y = float(art.filled.any(axis=(0, 2)).argmax())  # under the lowest filled layer
    centre = ti.math.vec3(art.shape[0] / 2, floor_y + art.shape[1] / 2.5, art.shape[2] / 2)
    distance = 2.1 * max(art.shape)
    facing = -1.0 if art.metadata.get("front") == "-z" else 1.0

    def eye_at(angle):  # an orbit; angle 0 looks at the object's front
        return centre + distance * ti.math.vec3(math.sin(angle), 0.4, facing * math.cos(angle))

    angle = 0.6
    if args.headless:
        render(image, grid, palette, eye_at(angle), centre, floor_y)
        ti.tools.imwrite(image, args.screenshot or "embed.png")
        return 0
    window = ti.ui.Window("taichi_voxify embedded", tuple(args.size))
    canvas = window.get_canvas()
    shot = args.screenshot
    while window.running:
        render(image, grid, palette, eye_at(angle), centre, floor_y)
        canvas.set_image(image)
        if shot:
            window.save_image(shot)
            shot = None
        window.show()
        angle += 0.01
    return 0


if __name__ == "__main__":
    sys.exit(main())
