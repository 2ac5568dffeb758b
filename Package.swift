// swift-tools-version:6.0
// nimetrics: DTI and resting-state fMRI metrics for longitudinal clinical trials.
import PackageDescription

let package = Package(
    name: "nimetrics",
    products: [
        // MARK: - Public API
        .executable(name: "nimetrics", targets: ["nimetrics"]),
        .library(name: "Geometry", targets: ["Geometry"]),
        .library(name: "NIfTI", targets: ["NIfTI"]),
        .library(name: "Diffusion", targets: ["Diffusion"]),
        .library(name: "Functional", targets: ["Functional"]),
        .library(name: "Statistics", targets: ["Statistics"]),
        .library(name: "Trial", targets: ["Trial"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        // MARK: - C libraries, wrapped once (implementation details)
        // niftilib: a plain C target, because Debian's nifti headers include <znzlib.h>
        // with angle brackets, which a system-library module map cannot resolve.
        .target(
            name: "CNIfTI",
            linkerSettings: [
                .linkedLibrary("nifti2"), .linkedLibrary("znz"),
                .linkedLibrary("z"), .linkedLibrary("m"),
            ]
        ),
        .systemLibrary(name: "CDeflate", pkgConfig: "libdeflate", providers: [.apt(["libdeflate-dev"])]),
        .systemLibrary(name: "CISAL", pkgConfig: "libisal", providers: [.apt(["libisal-dev"])]),
        .systemLibrary(name: "CFFTW", pkgConfig: "fftw3", providers: [.apt(["libfftw3-dev"])]),
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        /// OpenSSL's libcrypto, for SHA-256 only (input fingerprints).
        .systemLibrary(name: "CCrypto", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),
        /// HDF5, for ITK transform files (.h5) as fMRIPrep, QSIPrep and ANTs write them.
        .systemLibrary(name: "CHDF5", pkgConfig: "hdf5", providers: [.apt(["libhdf5-dev"])]),

        /// Slab-parallel loops, the shared-buffer views they read and write through, and the
        /// one type for work on a background thread.
        .target(name: "SlabParallel"),

        // MARK: - Geometry (pure maths, no files), shared by the file layer and the models
        /// 3 x 3 matrices, affines, axis codes and nearest-neighbour resampling.
        .target(name: "Geometry", dependencies: ["SlabParallel"]),

        // MARK: - File layer
        /// Inputs checked before they are opened (a FIFO, device or folder is refused at
        /// once) and folders made with the reason of a failure in words.
        .target(name: "FileSystem"),
        /// Write-to-temporary-then-rename, so no output is ever half-written.
        .target(name: "AtomicFiles", dependencies: ["FileSystem"]),
        /// NIfTI-1/NIfTI-2 images: headers parsed and encoded by niftilib, voxel data inflated
        /// with libdeflate or ISA-L and written as gzip chunks compressed by libdeflate.
        .target(name: "NIfTI", dependencies: ["CNIfTI", "CDeflate", "CISAL", "AtomicFiles", "FileSystem", "SlabParallel", "Geometry"]),
        /// TSV tables, JSON sidecars, BIDS-style text formats.
        .target(name: "Tabular", dependencies: ["AtomicFiles", "FileSystem"]),
        /// ITK/ANTs transform files (.h5, .txt/.tfm, .mat, NIfTI displacement fields) read into
        /// Geometry's transforms.
        .target(name: "TransformFiles", dependencies: ["CHDF5", "Geometry", "NIfTI", "FileSystem"]),

        // MARK: - Maths (no files, no visits)
        /// Label atlases and deterministic regional statistics.
        .target(name: "Parcellation", dependencies: ["SlabParallel"]),
        /// The tensor fit's vectorised inner kernel (C, compiled per instruction set), used by Diffusion.
        .target(name: "TensorKernels"),
        /// Gradient tables, the diffusion tensor model, its fits and metrics.
        .target(name: "Diffusion", dependencies: ["SlabParallel", "TensorKernels", "Geometry"]),
        /// Resting-state signal cleaning, spectra, connectivity and graph summaries.
        .target(name: "Functional", dependencies: ["CFFTW", "SlabParallel"]),
        /// Statistics of change: paired summaries, permutation tests, Spearman, Benjamini-Hochberg,
        /// the random-intercept mixed model (REML, Satterthwaite).
        .target(name: "Statistics"),

        // MARK: - Synthetic data with known truth (tests and the demo trial)
        .target(name: "Phantoms", dependencies: ["Geometry", "NIfTI", "Tabular", "AtomicFiles", "FileSystem"]),

        // MARK: - Per-visit pipelines: files -> models -> metrics -> files
        .target(name: "Pipelines", dependencies: ["SlabParallel", "AtomicFiles", "FileSystem", "Geometry", "NIfTI", "Tabular", "TransformFiles", "Parcellation", "Diffusion", "Functional"]),

        // MARK: - Cohort layer: visits, clinical data, group tables, SQLite
        .target(name: "Trial", dependencies: ["SlabParallel", "Pipelines", "Statistics", "Diffusion", "Functional", "Tabular", "AtomicFiles", "FileSystem", "CSQLite", "CCrypto"]),

        // MARK: - Reports: HTML, SVG and PNG from the outputs alone (knows no maths)
        /// Visit and trial reports: plots as inline SVG, image mosaics as PNG (zlib streams by
        /// libdeflate), everything in one self-contained HTML file.
        .target(name: "Reports", dependencies: ["CDeflate", "Geometry", "NIfTI", "Tabular", "AtomicFiles", "FileSystem"]),

        // MARK: - Command-line tool (thin: parse, call the library, report)
        .executableTarget(
            name: "nimetrics",
            dependencies: [
                "NIfTI", "Tabular", "Diffusion", "Functional", "Pipelines", "Trial", "Reports", "Phantoms", "FileSystem", "AtomicFiles",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),

        // MARK: - Tests
        /// Helpers shared by the test targets (a seeded generator, folder-tree snapshots).
        .target(name: "TestSupport", dependencies: ["CDeflate", "Statistics"], path: "Tests/TestSupport"),
        .testTarget(name: "GeometryTests", dependencies: ["TestSupport", "Geometry"]),
        .testTarget(name: "NIfTITests", dependencies: ["TestSupport", "Geometry", "NIfTI"]),
        .testTarget(name: "TransformFilesTests", dependencies: ["CHDF5", "Geometry", "NIfTI", "TransformFiles"]),
        .testTarget(name: "TabularTests", dependencies: ["Tabular"]),
        .testTarget(name: "ParcellationTests", dependencies: ["TestSupport", "Parcellation"]),
        .testTarget(name: "DiffusionTests", dependencies: ["TestSupport", "Geometry", "Diffusion"]),
        .testTarget(name: "FunctionalTests", dependencies: ["TestSupport", "Functional"]),
        .testTarget(name: "PhantomsTests", dependencies: ["Geometry", "Phantoms", "NIfTI", "Tabular"]),
        .testTarget(name: "PipelinesTests", dependencies: ["TestSupport", "Geometry", "Pipelines", "Phantoms", "NIfTI", "Diffusion"]),
        .testTarget(name: "StatisticsTests", dependencies: ["Statistics"]),
        .testTarget(name: "TrialTests", dependencies: ["TestSupport", "Trial", "Phantoms"]),
        .testTarget(name: "ReportsTests", dependencies: ["TestSupport", "Reports", "NIfTI", "Tabular", "CDeflate", "Geometry", "Phantoms", "Pipelines"]),
        .testTarget(name: "CLITests", dependencies: ["TestSupport", "nimetrics", "Reports", "NIfTI", "Phantoms", "Tabular"]),
    ]
)
