// swift-tools-version:6.0
// libFuzzer targets for nimetrics's file readers, kept apart from the main package so that
// `swift build` there never sees them. Build and run with Scripts/fuzz (it passes
// `-sanitize=fuzzer,address`); each `main` hands over to libFuzzer's driver.
import PackageDescription

let package = Package(
    name: "nimetrics-fuzz",
    dependencies: [
        .package(name: "nimetrics", path: ".."),
    ],
    targets: [
        /// Hands `main` to libFuzzer (see its header for why).
        .target(name: "FuzzDriver"),
        /// NIfTI header validation, niftilib parsing and voxel reading (whole and by volume).
        .executableTarget(
            name: "FuzzNIfTI",
            dependencies: ["FuzzDriver", .product(name: "NIfTI", package: "nimetrics")]
        ),
        /// TSV tables, FSL bval/bvec and MRtrix gradient tables. `Tabular` is not a product of
        /// the main package; it is reached through `Trial`, which depends on it.
        .executableTarget(
            name: "FuzzTables",
            dependencies: [
                "FuzzDriver",
                .product(name: "Diffusion", package: "nimetrics"),
                .product(name: "Trial", package: "nimetrics"),
            ]
        ),
    ]
)
