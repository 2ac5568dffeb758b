// The Geometry module: 3 x 3 matrices, affine maps and nearest-neighbour resampling of voxel
// grids. Pure maths (no files, no images), shared by NIfTI (header affines and axis codes),
// Diffusion (gradient and eigenvector frames) and Pipelines (atlases on another grid).
//
//     Matrix3                      rows of SIMD3<Double>; *, transpose, determinant, inverse,
//                                  columnNorms, closestOrthogonal() (Higham 1986)
//     cross(_:_:)                  the cross product, used by every module
//     Affine                       linear Matrix3 + translation; apply, inverse, * (composition),
//                                  zooms, axisCodes (nibabel's aff2axcodes), maximumDifference
//     resampleNearest(_:sourceShape:sourceAffine:targetShape:targetAffine:)
//                                  a label grid onto another grid, nearest voxel centre
//
// Sums run in index order and inverses are adjugates over the determinant, so values computed
// here are reproducible bit for bit, whichever module computes them.
