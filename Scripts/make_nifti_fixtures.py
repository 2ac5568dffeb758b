#!/usr/bin/env python3
"""Writes the small NIfTI fixtures under Fixtures/nifti with nibabel, an implementation
independent of niftilib, plus expected.json: what nibabel reads back from each file (shape,
voxel sizes, affine, axis codes, datatype, TR, scaled voxel values).

Run once with nibabel installed (pip install nibabel numpy); the outputs are committed:
    python3 Scripts/make_nifti_fixtures.py
"""
import json
import os

import nibabel as nib
import numpy as np

OUT = os.path.join(os.path.dirname(__file__), "..", "Fixtures", "nifti")
os.makedirs(OUT, exist_ok=True)
rng = np.random.default_rng(20261125)
expected = {}


def oblique_affine(zooms, angles, origin):
    ax, ay, az = np.deg2rad(angles)
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    a = np.eye(4)
    a[:3, :3] = rz @ ry @ rx @ np.diag(zooms)
    a[:3, 3] = origin
    return a


def record(name, img_class=nib.Nifti1Image):
    path = os.path.join(OUT, name)
    img = nib.load(path)
    hdr = img.header
    data = np.asanyarray(img.dataobj).astype(np.float64)  # scaling applied as nibabel does
    zooms = [float(z) for z in hdr.get_zooms()]
    tr = None
    if len(img.shape) >= 4:
        units = hdr.get_xyzt_units()[1]
        tr = zooms[3] * {"msec": 1e-3, "usec": 1e-6}.get(units, 1.0)
    expected[name] = {
        "nifti_version": 2 if isinstance(hdr, nib.Nifti2Header) else 1,
        "shape": list(img.shape),
        "zooms": zooms,
        "affine": img.affine.tolist(),
        "axcodes": "".join(nib.aff2axcodes(img.affine)),
        "datatype": str(hdr.get_data_dtype().newbyteorder("=").name),
        "tr": tr,
        "values": data.ravel(order="F").tolist() if data.size <= 512 else None,
        "sum": float(data.sum()),
    }


# Every datatype, 3D 4x3x2, RAS, with values spanning each type's range.
for dtype in ["uint8", "int8", "int16", "uint16", "int32", "uint32", "int64", "uint64", "float32", "float64"]:
    info = np.iinfo(dtype) if np.dtype(dtype).kind in "iu" else None
    if info is not None:
        values = np.linspace(info.min, info.max if np.dtype(dtype).itemsize < 8 else 2**40, 24)
        values = np.round(values).astype(dtype)
    else:
        values = (rng.standard_normal(24) * 1000).astype(dtype)
    img = nib.Nifti1Image(values.reshape((4, 3, 2), order="F"), np.diag([2.0, 2.5, 3.0, 1.0]), dtype=dtype)
    name = f"dtype_{dtype}.nii"
    nib.save(img, os.path.join(OUT, name))
    record(name)

# LAS 4D int16 .nii.gz with TR in milliseconds and scaling.
las = np.diag([-2.0, 2.0, 2.0, 1.0])
las[:3, 3] = [90, -126, -72]
data = rng.integers(-300, 3000, size=(5, 4, 3, 6)).astype(np.int16)
img = nib.Nifti1Image(data, las)
img.header.set_xyzt_units("mm", "msec")
img.header["pixdim"][4] = 2500.0
img.header.set_slope_inter(0.5, 10.0)
nib.save(img, os.path.join(OUT, "las_int16_scaled_4d.nii.gz"))
record("las_int16_scaled_4d.nii.gz")

# RAS float32 .nii, sform only (qform code 0).
ras = np.diag([1.5, 1.5, 3.0, 1.0])
ras[:3, 3] = [-10, 20, -30]
img = nib.Nifti1Image(rng.standard_normal((6, 5, 4)).astype(np.float32), ras)
img.header.set_qform(None, code=0)
img.header.set_sform(ras, code=2)
nib.save(img, os.path.join(OUT, "ras_float32_sform.nii"))
record("ras_float32_sform.nii")

# Oblique, qform only (sform code 0), uint8 .nii.gz.
obl = oblique_affine([2.0, 2.0, 2.5], [12, -8, 20], [-80, -100, 40])
img = nib.Nifti1Image(rng.integers(0, 255, size=(5, 5, 4)).astype(np.uint8), None)
img.header.set_qform(obl, code=1)
img.header.set_sform(None, code=0)
nib.save(img, os.path.join(OUT, "oblique_uint8_qform.nii.gz"))
record("oblique_uint8_qform.nii.gz")

# Oblique LAS-like sform and a different qform: the sform must win.
obl2 = oblique_affine([-2.0, 2.0, 2.0], [5, 15, -10], [100, -90, -60])
img = nib.Nifti1Image(rng.standard_normal((4, 4, 3)).astype(np.float32), obl2)
img.header.set_qform(np.diag([3.0, 3.0, 3.0, 1.0]), code=1)
img.header.set_sform(obl2, code=4)
nib.save(img, os.path.join(OUT, "oblique_sform_over_qform.nii.gz"))
record("oblique_sform_over_qform.nii.gz")

# No transform at all: nibabel's base affine (x flipped, centred).
img = nib.Nifti1Image(rng.standard_normal((4, 6, 2)).astype(np.float32), None)
img.header.set_qform(None, code=0)
img.header.set_sform(None, code=0)
img.header.set_zooms((2.0, 3.0, 4.0))
nib.save(img, os.path.join(OUT, "no_transform.nii"))
record("no_transform.nii")

# NIfTI-2, float64, 4D, RAS with TR in seconds.
img = nib.Nifti2Image(rng.standard_normal((3, 4, 5, 2)), ras)
img.header.set_xyzt_units("mm", "sec")
img.header["pixdim"][4] = 0.8
nib.save(img, os.path.join(OUT, "nifti2_float64_4d.nii"))
record("nifti2_float64_4d.nii")

# NIfTI-2 compressed, oblique, int32.
img = nib.Nifti2Image(rng.integers(-5000, 5000, size=(4, 3, 5)).astype(np.int32), obl)
nib.save(img, os.path.join(OUT, "nifti2_oblique_int32.nii.gz"))
record("nifti2_oblique_int32.nii.gz")

# A .hdr/.img pair, int16, LAS.
img = nib.Nifti1Pair(rng.integers(-100, 100, size=(4, 4, 2)).astype(np.int16), las)
nib.save(img, os.path.join(OUT, "pair_int16.hdr"))
record("pair_int16.hdr")

# Big-endian float32 with scaling slope 2 and intercept -1.
hdr = nib.Nifti1Header(endianness=">")
hdr.set_data_dtype(">f4")
img = nib.Nifti1Image(rng.standard_normal((3, 3, 2)).astype(">f4"), ras, header=hdr)
img.header.set_slope_inter(2.0, -1.0)
nib.save(img, os.path.join(OUT, "bigendian_float32_scaled.nii"))
record("bigendian_float32_scaled.nii")

# Slope 0 means no scaling.
img = nib.Nifti1Image(np.arange(24, dtype=np.int16).reshape((4, 3, 2), order="F"), ras)
nib.save(img, os.path.join(OUT, "slope_zero.nii"))
raw = bytearray(open(os.path.join(OUT, "slope_zero.nii"), "rb").read())
raw[112:116] = np.float32(0).tobytes()
raw[116:120] = np.float32(7).tobytes()
open(os.path.join(OUT, "slope_zero.nii"), "wb").write(raw)
record("slope_zero.nii")

with open(os.path.join(OUT, "expected.json"), "w") as f:
    json.dump(expected, f, indent=1, sort_keys=True)
print(f"wrote {len(expected)} fixtures to {os.path.normpath(OUT)}")
