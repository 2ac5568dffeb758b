"""Deterministic benchmark inputs for Scripts/bench and Scripts/crosscheck.

Writes into OUT (default .cache/bench/data):

- dwi/sub-bench_dwi.nii.gz (+ .bval/.bvec, FSL format), dwi/sub-bench_mask.nii.gz,
  dwi/sub-bench_atlas.nii.gz (+ .tsv): 96x96x60, 65 volumes (5 b=0 + 60 directions at
  b=1000), int16, LAS affine (2 mm), ellipsoid brain of ~200k voxels, grey-matter-like
  isotropic tissue, CSF ventricles and white-matter-like anisotropic tracts whose direction
  varies smoothly, Rician noise (sigma 20 for S0 ~ 1000).
- func/sub-bench_task-rest_bold.nii.gz (+ _bold.json, _desc-confounds_timeseries.tsv),
  func/atlas-bench_dseg.nii.gz (+ .tsv: index, name, network): 64x64x36 x 240, float32,
  TR 2 s, 100 regions in 7 networks, 6 motion parameters with framewise displacement.
- dwi-large/: the DWI on 128x128x80 x 102 (6 b=0 + 96 at b=1000), 1.75 mm.
- dwi-multishell/: an HCP-like DWI, b = 0/1000/2000/3000, 1.25 mm, 207 volumes, 112x112x72.
- func-run2/: a second BOLD run of the standard size (for a session with two runs).
- nii/: the standard DWI and BOLD run uncompressed (.nii).
- with --large, func-large/: the same on 91x109x91 x 1200 (4.3 GB uncompressed), written
  volume by volume so generating it needs little memory.

Everything is derived from fixed seeds: the same files on every run.
"""

import argparse
import gzip
import json
import os
import sys

import nibabel as nib
import numpy as np


def ellipsoid(shape, radii, center=None):
    center = np.array(center if center is not None else [(s - 1) / 2 for s in shape])
    grids = np.meshgrid(*[np.arange(s) for s in shape], indexing="ij")
    r2 = sum(((g - c) / r) ** 2 for g, c, r in zip(grids, center, radii))
    return r2 <= 1.0, grids, r2


def gradient_directions(n):
    """n well-spread unit vectors on a hemisphere (Fibonacci spiral)."""
    i = np.arange(n) + 0.5
    z = 1 - i / n  # hemisphere z in (0, 1]
    r = np.sqrt(1 - z * z)
    phi = np.pi * (3 - np.sqrt(5)) * i
    v = np.stack([r * np.cos(phi), r * np.sin(phi), z], axis=1)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def make_dwi(out, shape=(96, 96, 60), seed=1, voxel=2.0, shells=((1000, 60),), b0=5):
    """A DWI of `shape` (mm per voxel `voxel`), `b0` b=0 volumes interleaved with the shells
    (b, directions), the brain scaled with the grid."""
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(seed)
    k = np.array(shape) / np.array([96, 96, 60])  # distances below are in voxels of the 96x96x60 grid
    brain, (x, y, z), r2 = ellipsoid(shape, (40 * k[0], 44 * k[1], 27 * k[2]))
    cx, cy, cz = [(s - 1) / 2 for s in shape]
    x = cx + (x - cx) / k[0]
    y = cy + (y - cy) / k[1]
    z = cz + (z - cz) / k[2]
    n = brain.sum()
    # Tissue: grey matter by default; ventricles (CSF); white matter shell and a
    # superior-inferior tract pair.
    md_gm, md_csf = 0.8e-3, 2.8e-3
    evals = np.zeros(shape + (3,))
    evecs = np.zeros(shape + (3,))
    evals[...] = md_gm
    evecs[..., 0] = 1.0
    s0 = np.full(shape, 1000.0)
    # White matter: a thick shell (0.35 < r < 0.75) with fibres running tangentially in
    # the axial plane (circles around z), plus two vertical tracts (corticospinal-like).
    shell = brain & (r2 > 0.35 ** 2) & (r2 < 0.75 ** 2)
    tangent = np.stack([-(y - cy), (x - cx), 0.3 * (z - cz)], axis=-1)
    tangent /= np.linalg.norm(tangent, axis=-1, keepdims=True) + 1e-12
    evals[shell] = [1.7e-3, 0.35e-3, 0.3e-3]
    evecs[shell] = tangent[shell]
    s0[shell] = 800.0
    for side in (-1, 1):
        tract = brain & (((x - cx - side * 12) / 5) ** 2 + ((y - cy + 4) / 5) ** 2 <= 1)
        evals[tract] = [1.8e-3, 0.3e-3, 0.25e-3]
        evecs[tract] = [0.15 * side, 0.1, 0.98]
        s0[tract] = 780.0
    vent = brain & ((((x - cx) / 10) ** 2 + ((y - cy - 5) / 16) ** 2 + ((z - cz - 3) / 8) ** 2) <= 1)
    evals[vent] = md_csf
    s0[vent] = 1900.0
    evecs /= np.linalg.norm(evecs, axis=-1, keepdims=True)
    # Smooth variation of diffusivities (+-8 %) so maps are not piecewise constant.
    wobble = 1 + 0.08 * np.sin(x / 7.0) * np.cos(y / 9.0) * np.sin(z / 5.0 + 0.3)
    evals *= wobble[..., None]
    # Tensor D = l1 e1 e1' + l_perp (I - e1 e1') with l_perp the mean of l2, l3 (axially
    # symmetric, so e2/e3 need not be defined), for voxels in the brain.
    bv = evals[brain]
    e1 = evecs[brain]
    l1 = bv[:, 0]
    lp = 0.5 * (bv[:, 1] + bv[:, 2])
    D = lp[:, None, None] * np.eye(3)[None] + (l1 - lp)[:, None, None] * e1[:, :, None] * e1[:, None, :]
    bvals = [np.zeros(b0)]
    bvecs = [np.zeros((b0, 3))]
    for b, count in shells:
        bvals.append(np.full(count, float(b)))
        bvecs.append(gradient_directions(count))
    bvals, bvecs = np.concatenate(bvals), np.concatenate(bvecs)
    weighted = np.arange(b0, len(bvals))
    # b=0 volumes interleaved: one first, then one after each equal share of the rest.
    order = np.concatenate([np.r_[i, part] for i, part in enumerate(np.array_split(weighted, b0))])
    bvals, bvecs = bvals[order], bvecs[order]
    volumes = len(bvals)
    # Signal: with an LAS affine (det < 0) FSL bvecs are in voxel axes as they stand,
    # so the tensor (defined in voxel axes) and the gradients share a frame.
    sigma = 20.0
    data = np.zeros(shape + (volumes,), dtype=np.int16)
    inside = np.zeros((int(n), volumes), dtype=np.int16)
    # In blocks of volumes on large grids, to bound memory (one block on the standard grid,
    # so its noise draws, and so its file, are those of earlier versions).
    block = volumes if n * volumes <= 60_000_000 else 16
    for start in range(0, volumes, block):
        v = slice(start, min(volumes, start + block))
        adc = np.einsum("vi,nij,vj->nv", bvecs[v], D, bvecs[v])
        signal = s0[brain][:, None] * np.exp(-bvals[None, v] * adc)
        noisy = np.sqrt((signal + rng.normal(0, sigma, signal.shape)) ** 2 + rng.normal(0, sigma, signal.shape) ** 2)
        inside[:, v] = np.clip(np.rint(noisy), 0, 32767).astype(np.int16)
    data[brain] = inside
    # Background: low Rician noise floor outside the brain.
    bg = ~brain
    data[bg] = np.rint(np.abs(rng.normal(0, sigma, (bg.sum(), volumes)))).astype(np.int16)
    affine = np.diag([-voxel, voxel, voxel, 1.0])
    affine[:3, 3] = [voxel * shape[0] / 2, -voxel * shape[1] / 2, -voxel * shape[2] / 2]
    img = nib.Nifti1Image(data, affine)
    img.header.set_xyzt_units("mm", "sec")
    img.header.set_qform(affine, 1)
    img.header.set_sform(affine, 1)
    nib.save(img, os.path.join(out, "sub-bench_dwi.nii.gz"))
    np.savetxt(os.path.join(out, "sub-bench_dwi.bval"), bvals[None, :], fmt="%d")
    np.savetxt(os.path.join(out, "sub-bench_dwi.bvec"), bvecs.T, fmt="%.6f")
    mask = nib.Nifti1Image(brain.astype(np.uint8), affine)
    nib.save(mask, os.path.join(out, "sub-bench_mask.nii.gz"))
    # A small atlas: the shell, the tracts, the ventricles, the rest.
    atlas = np.zeros(shape, dtype=np.int16)
    atlas[brain] = 1
    atlas[shell] = 2
    atlas[vent] = 3
    atlas[brain & (((x - cx + 12) / 5) ** 2 + ((y - cy + 4) / 5) ** 2 <= 1)] = 4
    atlas[brain & (((x - cx - 12) / 5) ** 2 + ((y - cy + 4) / 5) ** 2 <= 1)] = 5
    nib.save(nib.Nifti1Image(atlas, affine), os.path.join(out, "sub-bench_atlas.nii.gz"))
    with open(os.path.join(out, "sub-bench_atlas.tsv"), "w") as f:
        f.write("index\tname\n1\tgrey\n2\twhite_shell\n3\tventricles\n4\tR_tract\n5\tL_tract\n")
    print(f"dwi: {shape} x {volumes}, brain mask {int(n)} voxels", file=sys.stderr)


def lowpass_noise(rng, n, t, tr, cutoff=0.1):
    """n series of length t of Gaussian noise low-passed below `cutoff` Hz (FFT)."""
    spec = np.fft.rfft(rng.normal(size=(n, t)), axis=1)
    f = np.fft.rfftfreq(t, tr)
    spec[:, f > cutoff] *= 0.15
    out = np.fft.irfft(spec, n=t, axis=1)
    return out / out.std(axis=1, keepdims=True)


def write_nifti_streamed(path, shape, affine, tr, volumes, level=1):
    """A float32 NIfTI-1 .nii.gz written one volume at a time from an iterator."""
    hdr = nib.Nifti1Header()
    hdr.set_data_dtype(np.float32)
    hdr.set_data_shape(shape)
    hdr.set_zooms(tuple(abs(affine[i, i]) for i in range(3)) + (tr,))
    hdr.set_xyzt_units("mm", "sec")
    hdr.set_qform(affine, 1)
    hdr.set_sform(affine, 1)
    hdr["vox_offset"] = 352
    tmp = path + ".tmp"
    with gzip.open(tmp, "wb", compresslevel=level) as f:
        f.write(hdr.binaryblock)
        f.write(b"\x00\x00\x00\x00")
        for vol in volumes:
            f.write(np.asarray(vol, dtype="<f4").tobytes(order="F"))
    os.replace(tmp, path)


def make_fmri(out, shape=(64, 64, 36), t=240, tr=2.0, voxel=3.0, regions=100, seed=2, level=6):
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(seed)
    radii = (shape[0] * 0.42, shape[1] * 0.44, shape[2] * 0.42)
    brain, (x, y, z), _ = ellipsoid(shape, radii)
    coords = np.argwhere(brain)
    # Atlas: Voronoi cells around `regions` seeds drawn in the brain, then a 90 % core of
    # the brain labelled (the rim stays 0, like a cortical atlas that misses some voxels).
    seeds = coords[rng.choice(len(coords), regions, replace=False)].astype(float)
    labels = np.zeros(len(coords), dtype=np.int32)
    for start in range(0, len(coords), 65536):
        c = coords[start:start + 65536].astype(float)
        d = ((c[:, None, :] - seeds[None, :, :]) ** 2).sum(-1)
        labels[start:start + 65536] = d.argmin(1) + 1
    atlas = np.zeros(shape, dtype=np.int16)
    atlas[tuple(coords.T)] = labels
    affine = np.diag([voxel, voxel, voxel, 1.0])
    affine[:3, 3] = [-(shape[0] - 1) * voxel / 2, -(shape[1] - 1) * voxel / 2, -(shape[2] - 1) * voxel / 2]
    networks = ["Vis", "SomMot", "DorsAttn", "SalVentAttn", "Limbic", "Cont", "DMN"]
    net_of = np.arange(regions) % len(networks)
    nib.save(nib.Nifti1Image(atlas, affine), os.path.join(out, "atlas-bench_dseg.nii.gz"))
    with open(os.path.join(out, "atlas-bench_dseg.tsv"), "w") as f:
        f.write("index\tname\tnetwork\n")
        for r in range(regions):
            f.write(f"{r + 1}\tR{r + 1:03d}_{networks[net_of[r]]}\t{networks[net_of[r]]}\n")
    # Signals: network latents + region latents (low-frequency), motion, drift, noise.
    net_ts = lowpass_noise(rng, len(networks), t, tr)
    reg_ts = 0.7 * net_ts[net_of] + 0.7 * lowpass_noise(rng, regions, t, tr)
    motion = np.cumsum(rng.normal(0, 1, (t, 6)), axis=0)
    motion -= motion.mean(0)
    motion[:, :3] *= 0.03  # mm
    motion[:, 3:] *= 0.0005  # radians
    motion[rng.choice(t, 6, replace=False)] += rng.normal(0, 0.3, 6) * np.r_[np.ones(3), np.full(3, 0.005)]
    d = np.abs(np.diff(motion, axis=0))
    fd = np.r_[np.nan, d[:, :3].sum(1) + 50 * d[:, 3:].sum(1)]
    names = ["trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z"]
    with open(os.path.join(out, "sub-bench_task-rest_desc-confounds_timeseries.tsv"), "w") as f:
        f.write("\t".join(["global_signal", "csf", "white_matter"] + names + ["framewise_displacement"]) + "\n")
        gs = 0.3 * net_ts.mean(0)
        for i in range(t):
            row = [gs[i], 0.1 * net_ts[0, i], 0.1 * net_ts[1, i]] + list(motion[i]) + [fd[i]]
            f.write("\t".join("n/a" if not np.isfinite(v) else f"{v:.8g}" for v in row) + "\n")
    with open(os.path.join(out, "sub-bench_task-rest_bold.json"), "w") as f:
        json.dump({"RepetitionTime": tr, "TaskName": "rest"}, f, indent=2)
    vlabels = labels  # label per brain voxel (all brain voxels are in a region)
    base = (800 + 400 * rng.random(len(coords))).astype(np.float32)
    amp = (base * 0.01 * (0.5 + rng.random(len(coords)))).astype(np.float32)
    mload = rng.normal(0, 1, (len(coords), 6)).astype(np.float32)
    mz = (motion - motion.mean(0)) / (motion.std(0) + 1e-12)
    drift = np.linspace(-1, 1, t)
    idx = tuple(coords.T)

    def volumes():
        vrng = np.random.default_rng(seed + 1000)
        vol = np.zeros(shape, dtype=np.float32)
        for i in range(t):
            s = base * (1 + 0.004 * drift[i]) + amp * reg_ts[vlabels - 1, i].astype(np.float32)
            s += (mload @ mz[i].astype(np.float32)) * (0.004 * base)
            s += vrng.standard_normal(len(coords), dtype=np.float32) * (0.012 * base)
            vol[idx] = s
            yield vol

    write_nifti_streamed(os.path.join(out, "sub-bench_task-rest_bold.nii.gz"), shape + (t,), affine, tr, volumes(), level=level)
    print(f"fmri: {shape} x {t}, {len(coords)} brain voxels, {regions} regions", file=sys.stderr)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=".cache/bench/data")
    p.add_argument("--large", action="store_true")
    a = p.parse_args()
    stamp_version = "3"
    for name, fn, kwargs in [
        ("dwi", make_dwi, {}),
        ("func", make_fmri, {}),
        # 128x128x80 x 102 (6 b=0 + 96 at b=1000), 1.75 mm, about 480k brain voxels.
        ("dwi-large", make_dwi, dict(shape=(128, 128, 80), voxel=1.75, shells=((1000, 96),), b0=6, seed=11)),
        # HCP-like multi-shell: b=0/1000/2000/3000, 1.25 mm, 9 + 3 x 66 = 207 volumes, on a
        # reduced field of view (112x112x72) so a run takes seconds on 2 cores.
        ("dwi-multishell", make_dwi, dict(shape=(112, 112, 72), voxel=1.25, shells=((1000, 66), (2000, 66), (3000, 66)),
                                          b0=9, seed=12)),
        # A second BOLD run of the standard size (its own noise; the first run's atlas is used).
        ("func-run2", make_fmri, dict(seed=3)),
        ("nii", uncompressed_copies, dict(data=a.out)),
    ] + ([("func-large", make_fmri, dict(shape=(91, 109, 91), t=1200, voxel=2.0, level=1))] if a.large else []):
        folder = os.path.join(a.out, name)
        stamp = os.path.join(folder, ".complete")
        if os.path.exists(stamp) and open(stamp).read().strip() == stamp_version:
            continue
        fn(folder, **kwargs)
        with open(stamp, "w") as f:
            f.write(stamp_version + "\n")


def uncompressed_copies(out, data):
    """nii/: the standard DWI and BOLD run inflated to .nii (same bytes as the .nii.gz hold)."""
    os.makedirs(out, exist_ok=True)
    for source, target in [("dwi/sub-bench_dwi.nii.gz", "sub-bench_dwi.nii"),
                           ("func/sub-bench_task-rest_bold.nii.gz", "sub-bench_task-rest_bold.nii")]:
        with gzip.open(os.path.join(data, source), "rb") as f, open(os.path.join(out, target) + ".tmp", "wb") as g:
            while chunk := f.read(1 << 24):
                g.write(chunk)
        os.replace(os.path.join(out, target) + ".tmp", os.path.join(out, target))


if __name__ == "__main__":
    main()
