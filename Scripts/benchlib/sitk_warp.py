"""Bench inputs and peer for `nimetrics warp`: SimpleITK's nearest-neighbour Resample.

    sitk_warp.py make OUT        an MNI-sized atlas (182x218x182, 1 mm, 200 blocky labels), a
                                 1.25 mm oblique reference, and a composite ITK transform
                                 (affine + smooth 1 mm displacement field) as OUT/xfm.h5
    sitk_warp.py warp ATLAS REFERENCE XFM OUT
                                 the atlas resampled onto the reference through XFM
"""

import os
import sys

import nibabel as nib
import numpy as np
import SimpleITK as sitk


def make(out):
    os.makedirs(out, exist_ok=True)
    stamp = os.path.join(out, ".complete")
    if os.path.exists(stamp):
        return
    rng = np.random.default_rng(7)
    shape = (182, 218, 182)
    affine = np.array([[1.0, 0, 0, -90], [0, 1, 0, -126], [0, 0, 1, -72], [0, 0, 0, 1]])
    # 200 labels: the nearest of 200 random seeds inside an ellipsoid, on 6 mm blocks.
    seeds = rng.uniform([20, 20, 20], [160, 196, 160], size=(200, 3))
    coarse = np.stack(np.meshgrid(*[np.arange(0, n, 6) + 3 for n in shape], indexing="ij"), axis=-1).reshape(-1, 3)
    nearest = np.argmin(((coarse[:, None, :] - seeds[None, :, :]) ** 2).sum(-1), axis=1) + 1
    blocks = nearest.reshape([len(range(0, n, 6)) for n in shape])
    labels = np.repeat(np.repeat(np.repeat(blocks, 6, 0), 6, 1), 6, 2)[: shape[0], : shape[1], : shape[2]]
    idx = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), axis=-1)
    inside = (((idx - np.array(shape) / 2) / (np.array(shape) / 2.2)) ** 2).sum(-1) <= 1
    labels = np.where(inside, labels, 0).astype(np.int16)
    img = nib.Nifti1Image(labels, affine)
    img.set_qform(affine, 1)
    nib.save(img, f"{out}/atlas.nii.gz")
    ref_shape = (145, 174, 145)
    c, s = np.cos(np.radians(6)), np.sin(np.radians(6))
    lin = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]) @ np.diag([1.25, 1.25, 1.25])
    ref_aff = np.eye(4)
    ref_aff[:3, :3] = lin
    ref_aff[:3, 3] = -lin @ ((np.array(ref_shape) - 1) / 2) + np.array([0, -18, 18])
    ref = nib.Nifti1Image(np.zeros(ref_shape, np.uint8), ref_aff)
    ref.set_qform(ref_aff, 1)
    nib.save(ref, f"{out}/reference.nii.gz")
    # Composite: affine, then a smooth 1 mm field on the atlas grid (LPS, as ITK holds it).
    tx = sitk.AffineTransform(3)
    tx.SetMatrix((1.02, 0.03, 0.0, -0.02, 0.98, 0.01, 0.0, -0.01, 1.01))
    tx.SetTranslation((1.5, -2.0, 3.0))
    atlas_itk = sitk.ReadImage(f"{out}/atlas.nii.gz")
    grid = np.stack(np.meshgrid(*[np.arange(n, dtype=np.float32) for n in shape], indexing="ij"), axis=-1)
    d = np.stack([2.0 * np.sin(grid[..., 1] / 15.0), 2.5 * np.cos(grid[..., 2] / 11.0), 1.5 * np.sin(grid[..., 0] / 17.0)], -1)
    field = sitk.GetImageFromArray(np.transpose(d, (2, 1, 0, 3)).astype(np.float64), isVector=True)
    field.CopyInformation(atlas_itk)
    composite = sitk.CompositeTransform([tx, sitk.DisplacementFieldTransform(field)])
    sitk.WriteTransform(composite, f"{out}/xfm.h5")
    open(stamp, "w").write("1\n")


def warp(atlas, reference, xfm, out):
    moving = sitk.ReadImage(atlas)
    ref = sitk.ReadImage(reference)
    transform = sitk.ReadTransform(xfm)
    sitk.WriteImage(sitk.Resample(moving, ref, transform, sitk.sitkNearestNeighbor, 0, moving.GetPixelID()), out)


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(sys.argv[2])
    else:
        warp(*sys.argv[2:6])
