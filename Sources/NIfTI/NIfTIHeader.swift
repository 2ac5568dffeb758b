import Foundation
import Geometry

/// The NIfTI quaternion (qform) parameters, kept so a derived map can be written with
/// exactly its source's qform.
public struct QuaternionParameters: Equatable, Sendable {
    public var b: Double, c: Double, d: Double
    public var offsetX: Double, offsetY: Double, offsetZ: Double
    /// -1 or 1 (pixdim[0]).
    public var qfac: Double

    public init(b: Double, c: Double, d: Double, offsetX: Double, offsetY: Double, offsetZ: Double, qfac: Double) {
        self.b = b; self.c = c; self.d = d
        self.offsetX = offsetX; self.offsetY = offsetY; self.offsetZ = offsetZ
        self.qfac = qfac
    }
}

/// Everything about a NIfTI image except its voxels: grid, spacing, transforms, datatype,
/// scaling and timing.
///
/// The voxel-to-world ``affine`` is chosen as nibabel chooses it: the sform when
/// `sform_code > 0`, else the qform when `qform_code > 0`, else the Analyze-style affine
/// made from the voxel sizes, centred on the grid with x flipped.
public struct NIfTIHeader: Equatable, Sendable {
    /// 1 or 2.
    public var niftiVersion: Int
    /// `dim[1...dim[0]]`: every dimension, spatial first.
    public var shape: [Int]
    /// `pixdim[1...dim[0]]` as stored (spatial in `xyzUnits`, time in `timeUnits`).
    public var pixdim: [Double]
    public var datatype: NIfTIDataType
    /// `scl_slope` and `scl_inter` as stored in the file.
    public var sclSlope: Double
    public var sclInter: Double
    public var qformCode: Int
    public var sformCode: Int
    /// The qform matrix as niftilib computes it from the quaternion parameters.
    public var qform: Affine
    public var quaternion: QuaternionParameters
    /// The sform matrix (srow_x, srow_y, srow_z).
    public var sform: Affine
    /// NIfTI unit codes (`NIFTI_UNITS_*`).
    public var xyzUnits: Int
    public var timeUnits: Int
    public var toffset: Double
    /// `descrip`.
    public var descriptionText: String
    /// `intent_code`.
    public var intentCode: Int

    // Where the voxels are.
    var dataPath: String
    var dataOffset: Int
    var byteSwapped: Bool

    public init(
        niftiVersion: Int = 1, shape: [Int], pixdim: [Double], datatype: NIfTIDataType,
        sclSlope: Double = 1, sclInter: Double = 0,
        qformCode: Int = 0, sformCode: Int = 0,
        qform: Affine = .diagonal(1, 1, 1),
        quaternion: QuaternionParameters = .init(b: 0, c: 0, d: 0, offsetX: 0, offsetY: 0, offsetZ: 0, qfac: 1),
        sform: Affine = .diagonal(1, 1, 1),
        xyzUnits: Int = 2, timeUnits: Int = 8, toffset: Double = 0, descriptionText: String = "", intentCode: Int = 0
    ) {
        self.niftiVersion = niftiVersion
        self.shape = shape
        self.pixdim = pixdim
        self.datatype = datatype
        self.sclSlope = sclSlope
        self.sclInter = sclInter
        self.qformCode = qformCode
        self.sformCode = sformCode
        self.qform = qform
        self.quaternion = quaternion
        self.sform = sform
        self.xyzUnits = xyzUnits
        self.timeUnits = timeUnits
        self.toffset = toffset
        self.descriptionText = descriptionText
        self.intentCode = intentCode
        self.dataPath = ""
        self.dataOffset = 0
        self.byteSwapped = false
    }

    /// A header for a new image on the grid `affine` describes (sform and qform both set,
    /// codes "scanner anatomical").
    public static func make(shape: [Int], affine: Affine, repetitionTime: Double? = nil, datatype: NIfTIDataType = .float32) -> NIfTIHeader {
        let zooms = affine.zooms
        var pixdim = [zooms.x, zooms.y, zooms.z]
        while pixdim.count < shape.count { pixdim.append(1) }
        if let repetitionTime, shape.count >= 4 { pixdim[3] = repetitionTime }
        pixdim = Array(pixdim.prefix(shape.count))
        var header = NIfTIHeader(shape: shape, pixdim: pixdim, datatype: datatype,
                                 qformCode: 1, sformCode: 1, qform: affine, sform: affine)
        header.quaternion = quaternionParameters(for: affine)
        return header
    }

    // MARK: Derived values

    /// The number of dimensions, `dim[0]`.
    public var dimensionCount: Int { shape.count }

    /// The first three dimensions (1 where the image has fewer).
    public var spatialShape: (x: Int, y: Int, z: Int) {
        (shape.count > 0 ? shape[0] : 1, shape.count > 1 ? shape[1] : 1, shape.count > 2 ? shape[2] : 1)
    }

    /// Voxels in one 3D volume.
    public var voxelsPerVolume: Int { let s = spatialShape; return s.x * s.y * s.z }

    /// The number of 3D volumes (product of dimensions 4 to 7; 1 for a 3D image).
    public var volumeCount: Int { shape.count > 3 ? shape[3...].reduce(1, *) : 1 }

    /// Total voxel count.
    public var voxelCount: Int { shape.reduce(1, *) }

    /// The voxel-to-world transform nibabel would use (see the type's discussion).
    public var affine: Affine {
        if sformCode > 0 { return sform }
        if qformCode > 0 { return qform }
        return baseAffine
    }

    /// nibabel's `get_base_affine`: voxel sizes on the diagonal, x flipped, origin at the
    /// grid centre.
    public var baseAffine: Affine {
        let s = spatialShape
        let z = spatialZooms
        let centre = SIMD3(Double(s.x - 1) / 2, Double(s.y - 1) / 2, Double(s.z - 1) / 2)
        return Affine(linear: Matrix3(diagonal: SIMD3(-z[0], z[1], z[2])),
                      translation: SIMD3(centre.x * z[0], -centre.y * z[1], -centre.z * z[2]))
    }

    /// Spatial voxel sizes as stored (pixdim 1 to 3; 1 for missing dimensions).
    public var spatialZooms: [Double] { (0..<3).map { $0 < pixdim.count ? pixdim[$0] : 1 } }

    /// Voxel sizes: the three spatial ones, then the time step in seconds for 4D images.
    public var voxelSize: [Double] {
        var sizes = Array(pixdim.prefix(3))
        if shape.count >= 4 { sizes.append(repetitionTime ?? pixdim[3]) }
        if shape.count > 4 { sizes.append(contentsOf: pixdim[4...]) }
        return sizes
    }

    /// The time between volumes in seconds, from pixdim[4] and the time units
    /// (milliseconds and microseconds converted; unknown units taken as seconds).
    /// Nil for 3D images and when pixdim[4] is not positive.
    public var repetitionTime: Double? {
        guard shape.count >= 4, pixdim.count >= 4, pixdim[3].isFinite, pixdim[3] > 0 else { return nil }
        switch timeUnits {
        case 16: return pixdim[3] / 1000
        case 24: return pixdim[3] / 1_000_000
        default: return pixdim[3]
        }
    }

    /// The scaling nibabel applies, or nil when there is none: a slope of 0 or a
    /// non-finite slope means "no scaling" (nibabel's `get_slope_inter`).
    public var scaling: (slope: Double, intercept: Double)? {
        guard sclSlope != 0, sclSlope.isFinite else { return nil }
        if sclSlope == 1 && sclInter == 0 { return nil }
        return (sclSlope, sclInter.isFinite ? sclInter : 0)
    }

    /// Axis codes of the voxel axes, e.g. "LAS".
    public var axisCodes: String { affine.axisCodes }

    /// Whether `other` describes the same voxel grid (spatial shape and affine within
    /// `tolerance` millimetres).
    public func hasSameGrid(as other: NIfTIHeader, tolerance: Double = 1e-3) -> Bool {
        spatialShape == other.spatialShape && affine.maximumDifference(to: other.affine) <= tolerance
    }
}

/// Quaternion parameters that reproduce the rotation of `affine` (NIfTI-1 qform), with the
/// voxel sizes taken from its column norms.
func quaternionParameters(for affine: Affine) -> QuaternionParameters {
    let linear = affine.linear, zooms = affine.zooms
    let unitColumns = (0..<3).map { c in zooms[c] > 0 ? linear.column(c) / zooms[c] : linear.column(c) }
    var r = Matrix3(columns: unitColumns[0], unitColumns[1], unitColumns[2]).closestOrthogonal()
    var qfac = 1.0
    if r.determinant < 0 {
        qfac = -1
        r = Matrix3(columns: r.column(0), r.column(1), -r.column(2))
    }
    // Rotation matrix to quaternion (as nifti_mat44_to_quatern).
    var a = r[0, 0] + r[1, 1] + r[2, 2] + 1
    var b = 0.0, c = 0.0, d = 0.0
    if a > 0.5 {
        a = 0.5 * a.squareRoot()
        b = 0.25 * (r[2, 1] - r[1, 2]) / a
        c = 0.25 * (r[0, 2] - r[2, 0]) / a
        d = 0.25 * (r[1, 0] - r[0, 1]) / a
    } else {
        let xd = 1 + r[0, 0] - (r[1, 1] + r[2, 2])
        let yd = 1 + r[1, 1] - (r[0, 0] + r[2, 2])
        let zd = 1 + r[2, 2] - (r[0, 0] + r[1, 1])
        if xd > 1 {
            b = 0.5 * xd.squareRoot()
            c = 0.25 * (r[0, 1] + r[1, 0]) / b
            d = 0.25 * (r[0, 2] + r[2, 0]) / b
            a = 0.25 * (r[2, 1] - r[1, 2]) / b
        } else if yd > 1 {
            c = 0.5 * yd.squareRoot()
            b = 0.25 * (r[0, 1] + r[1, 0]) / c
            d = 0.25 * (r[1, 2] + r[2, 1]) / c
            a = 0.25 * (r[0, 2] - r[2, 0]) / c
        } else {
            d = 0.5 * zd.squareRoot()
            b = 0.25 * (r[0, 2] + r[2, 0]) / d
            c = 0.25 * (r[1, 2] + r[2, 1]) / d
            a = 0.25 * (r[1, 0] - r[0, 1]) / d
        }
        if a < 0 { b = -b; c = -c; d = -d }
    }
    let t = affine.translation
    return QuaternionParameters(b: b, c: c, d: d, offsetX: t[0], offsetY: t[1], offsetZ: t[2], qfac: qfac)
}
