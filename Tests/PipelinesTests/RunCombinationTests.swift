import Foundation
import Pipelines
import Testing

@Suite("Runs of a session combined")
struct RunCombinationTests {
    static func run(conn: Double, kept: Double, censored: Double, tsnr: Double) -> [VisitMetric] {
        [
            VisitMetric(modality: "func", region: wholeBrainRegion, metric: "conn_mean", value: conn),
            VisitMetric(modality: "func", region: wholeBrainRegion, metric: "volumes_kept", value: kept),
            VisitMetric(modality: "func", region: wholeBrainRegion, metric: "volumes_censored", value: censored),
            VisitMetric(modality: "func", region: wholeBrainRegion, metric: "censored_fraction", value: censored / (kept + censored)),
            VisitMetric(modality: "func", region: "A", metric: "tsnr_mean", value: tsnr),
        ]
    }

    @Test("correlations in Fisher z weighted by kept volumes, counts summed, other metrics weighted means")
    func combination() throws {
        let combined = RunCombination.combine([
            ("1", Self.run(conn: 0.2, kept: 100, censored: 20, tsnr: 50)),
            ("2", Self.run(conn: 0.6, kept: 300, censored: 0, tsnr: .nan)),
        ])
        #expect(combined.count == 15)
        #expect(combined.prefix(5).allSatisfy { $0.run == "1" } && combined[5..<10].allSatisfy { $0.run == "2" })
        let session = Dictionary(uniqueKeysWithValues: combined.filter { $0.run == nil }.map { ($0.metric, $0.value) })
        let z = (100 * atanh(0.2) + 300 * atanh(0.6)) / 400
        #expect(abs(session["conn_mean"]! - tanh(z)) < 1e-15)
        // A plain mean of r would be 0.5; the Fisher mean is not.
        #expect(abs(session["conn_mean"]! - 0.5) > 0.01)
        #expect(session["volumes_kept"] == 400 && session["volumes_censored"] == 20)
        #expect(abs(session["censored_fraction"]! - 20.0 / 420) < 1e-15)
        // A run whose value is n/a is left out of that metric.
        #expect(session["tsnr_mean"] == 50)
    }
}
