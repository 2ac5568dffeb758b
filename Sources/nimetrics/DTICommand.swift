import ArgumentParser
import Diffusion
import Foundation
import Pipelines

/// `nimetrics dti`: tensor fit, maps and regional summaries of one DWI series.
struct DTICommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dti",
        abstract: "Fit diffusion tensors; write FA/MD/AD/RD/S0/V1/tensor maps and regional summaries.",
        discussion: """
            Gradients: FSL .bval/.bvec (3 rows or 3 columns; vectors in voxel axes, x negated \
            when the affine's determinant is positive, exactly as FSL and MRtrix's -fslgrad \
            read them) or an MRtrix [x y z b] table in world coordinates (--grad). Volumes with \
            b <= 50 are b=0 and always fitted.

            Shells: a single-shell series is fitted whole, at any b-value (as MRtrix's \
            dwi2tensor and DIPY). In a multi-shell series the tensor, a low-b model, is fitted to \
            the volumes with b <= 1500, or to the lowest shell when it is above 1500. --max-b B \
            fits exactly the volumes with b <= B as written (not rounded to a shell). The \
            sidecar lists the b-values and shells used and left out.

            Fit: weighted least squares on the log signal with weights from an OLS pass \
            (default, as DIPY; --iterations re-weights as MRtrix's -iter), or OLS. Voxels \
            outside the mask or where the fit fails are 0 in every map and left out of summaries. \
            Negative eigenvalues are kept; FA is then computed from the formula as it stands \
            (it can exceed 1) and the count is reported in the sidecar's QC.

            Outputs in --out, named P_model-tensor_param-{fa,md,ad,rd,s0,v1,tensor}_dwimap.nii.gz \
            (tensor order D11 D12 D13 D22 D23 D33), P_desc-brain_mask.nii.gz, \
            P_seg-<atlas>_model-tensor_summary.tsv per --atlas (region, label, n_voxels, metric, \
            mean, sd, median, p05, p95; whole_brain and lesion rows included; \
            P_model-tensor_summary.tsv without an atlas) and P_model-tensor_dwimap.json. \
            Several atlases share the one tensor fit and give a summary table each.

            --vector-frame fsl (default): V1 and the tensor in FSL's dtifit frame, shown right \
            by FSLeyes. world: scanner RAS+ axes, as MRtrix's tensor2metric -vector.

            References: Basser, Mattiello & LeBihan 1994 (tensor model); Basser & Pierpaoli \
            1996 (FA, MD); Salvador et al. 2005, Veraart et al. 2013 (WLS); Otsu 1979 (mask); \
            Jeurissen et al. 2014 (gradient orientation check).
            """
    )

    @Option(help: "Diffusion-weighted 4D image (.nii or .nii.gz).")
    var dwi: String

    @Option(help: "FSL b-values file.")
    var bval: String?

    @Option(help: "FSL b-vectors file.")
    var bvec: String?

    @Option(help: "MRtrix-style gradient table [x y z b] in world coordinates (instead of --bval/--bvec).")
    var grad: String?

    @OptionGroup(title: "Masks") var masks: MaskOptions
    @OptionGroup(title: "Masks") var lesion: LesionOptions
    @OptionGroup(title: "Tensor fit") var tensorFit: TensorFitOptions
    @OptionGroup(title: "Atlas") var atlas: AtlasOptions
    @OptionGroup var common: CommonOptions

    func validate() throws {
        if grad == nil && (bval == nil || bvec == nil) {
            throw ValidationError("give --bval and --bvec, or --grad")
        }
        if grad != nil && (bval != nil || bvec != nil) {
            throw ValidationError("give either --grad or --bval/--bvec, not both")
        }
    }

    func run() throws {
        try runReportingFailure {
            try common.checkOutputFolder()
            var options = DiffusionOptions(dwiPath: dwi, bvalPath: bval, bvecPath: bvec, outputFolder: common.out, prefix: common.prefix)
            options.gradientTablePath = grad
            options.maskPath = masks.mask
            options.atlases = atlas.files
            options.lesionMaskPath = lesion.lesionMask
            options.parameters = tensorFit.parameters(resampleAtlas: atlas.resampleAtlas)
            options.threads = common.threads
            let result = try DiffusionPipeline.run(options)
            for warning in result.warnings { printWarning(warning) }
            print("dti: \(result.quality.voxelsFitted) voxels fitted (\(tensorFit.fit.rawValue.uppercased())); wrote \(result.files.count) files to \(common.out)")
        }
    }
}
