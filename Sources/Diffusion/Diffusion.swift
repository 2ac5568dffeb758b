// The Diffusion module: gradient tables, the diffusion tensor model, its fits and metrics.
//
// Data flow (maths only; files are read elsewhere and passed in as text or buffers):
//
//     GradientTable.fsl(bval:bvec:source:) / .mrtrix(_:source:)   text -> table (FSL frame or world)
//         .validate(volumeCount:), .selecting(maximumB:)           checks; volumes fitted (VolumeSelection)
//         .fslToWorld(linear:), .worldToFSL(linear:), .fslToVoxel(linear:)
//     DirectionTransform(from:to:linear:)                           directions: voxel <-> FSL <-> world
//     meanB0(data:table:voxelCount:) -> brainMask(meanB0:shape:)   mask
//     TensorModel(table:method:iterations:)                         design, pseudo-inverse
//         .fit(data:volumeCount:voxelCount:mask:threads:)            -> TensorFit (eight voxels per
//                                                                   vector, in TensorKernels)
//         .fit(_:voxels:gridVoxelCount:threads:)                     a voxel-compact signal ->
//                                                                   MaskedTensorFit on the grid
//     SymmetricEigen3(...), SymmetricEigen3.principal(...)           Jacobi; closed form for λ and V1
//     TensorFit.map(.fractionalAnisotropy) ... , .quality           maps and QC
//     fractionalAnisotropy(eigenvalues:) ...                         per-voxel metrics
//     gradientOrientationCheck(principalEigenvectors:fractionalAnisotropy:fitted:shape:)
//                                                                   flipped-axis check from one fit's V1
//     gradientOrientationCheck(data:volumeCount:shape:mask:table:)  the same, fitting the data once
//
// Data are volume-major as in NIfTI (`data[v * voxelCount + i]`, x fastest within a volume).
// Every threaded routine gives bit-identical results for any `threads`.
