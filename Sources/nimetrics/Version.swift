/// The tool version written into every sidecar and database.
enum NimetricsVersion {
    static let string = "0.1.0"
}
